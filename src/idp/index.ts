export { startIdp, type IdpOptions, type StartedIdp } from './server.js';
export { generateSigningKey, type SigningJwk } from './keys.js';
export { mintWorkloadToken, type WorkloadTokenRequest } from './workload.js';
export {
  DEFAULT_AUDIENCE,
  DEFAULT_CLI_CLIENT_ID,
  DEFAULT_USERS,
  DEFAULT_WORKLOAD_CLIENT_ID,
  DEFAULT_WORKLOAD_GROUPS,
  type IdpUser,
  type IdpWorkload,
} from './users.js';
