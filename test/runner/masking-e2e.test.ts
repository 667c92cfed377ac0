import { maskingSuite } from './masking-e2e-suite.js';

// Secrets masked in every output format of AWS CLI v1 (the suite: masking-e2e-suite.ts).
maskingSuite('v1');
