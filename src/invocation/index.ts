export { parseInvocation } from './parse.js';
export { actionInfo, isKnownServicePrefix, actionsForPrefix, allServicePrefixes } from './iam-catalog.js';
export * from './types.js';
