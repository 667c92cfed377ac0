export { startIdp, type IdpOptions, type StartedIdp } from './server.js';
export { generateSigningKey, type SigningJwk } from './keys.js';
export { mintWorkloadToken, type WorkloadTokenRequest } from './workload.js';
// The demo users, clients and audience (users.ts exports only these).
export * from './users.js';
