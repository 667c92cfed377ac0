import { maskingSuite } from './masking-e2e-suite.js';

// Secrets masked in every output format of AWS CLI v2, yaml included (the suite: masking-e2e-suite.ts).
maskingSuite('v2');
