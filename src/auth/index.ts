export { createTokenVerifier, DEFAULT_ALGORITHMS, groupsFrom, type TokenVerifierOptions, type VerifiedCaller } from './verify.js';
export { getAccessToken, githubActionsToken, type AccessToken, type GetAccessTokenOptions, type TokenSource } from './access-token.js';
export { login, openInBrowser, type LoginOptions } from './login.js';
export { logout, type LogoutResult } from './logout.js';
export { whoami, type WhoamiInfo } from './whoami.js';
export { fetchBrokerConfig } from './broker-config.js';
export { pollDeviceToken, type DeviceAuthorization } from './device-flow.js';
export { systemClock, type Clock } from './clock.js';
export {
  FileTokenStore,
  KeychainTokenStore,
  openTokenStore,
  loadKeytar,
  keychainUsable,
  type TokenStore,
  type KeytarLike,
} from './token-store.js';
export { parseStoredLogin, summarizeToken, type StoredLogin } from './stored-login.js';
