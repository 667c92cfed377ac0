/**
 * People and workloads known to the embedded identity provider (`guard-aws dev`, tests). These are development
 * defaults: the passwords are public on purpose and documented in the README. A real deployment points the broker
 * at its own identity provider instead.
 */
export interface IdpUser {
  username: string;
  password: string;
  groups: string[];
  /** Display name, carried as the `name` claim. */
  name?: string | undefined;
}

/** A confidential client that obtains tokens for itself (OAuth 2.0 client credentials, RFC 6749 §4.4). */
export interface IdpWorkload {
  clientId: string;
  clientSecret: string;
  groups: string[];
}

/**
 * Default users: one per role the shipped policies talk about.
 * - alice / alice-password — developers (everyday calls)
 * - bob / bob-password — approvers (may approve high-risk calls)
 * - carol / carol-password — auditors (read the audit log)
 */
export const DEFAULT_USERS: readonly IdpUser[] = Object.freeze([
  { username: 'alice', password: 'alice-password', groups: ['developers'], name: 'Alice Developer' },
  { username: 'bob', password: 'bob-password', groups: ['approvers'], name: 'Bob Approver' },
  { username: 'carol', password: 'carol-password', groups: ['auditors'], name: 'Carol Auditor' },
]);

/** Default workload client for CI jobs and agents; its secret is generated per start unless given. */
export const DEFAULT_WORKLOAD_CLIENT_ID = 'guard-aws-ci';
export const DEFAULT_WORKLOAD_GROUPS: readonly string[] = Object.freeze(['ci']);

/** The public (device-flow) client the `guard-aws` CLI logs in with. */
export const DEFAULT_CLI_CLIENT_ID = 'guard-aws-cli';

/** The public (authorization code + PKCE) client the broker's web console logs people in with. */
export const DEFAULT_CONSOLE_CLIENT_ID = 'guard-aws-console';

/** Audience of the broker's access tokens when none is configured: a resource indicator, which RFC 8707 §2 requires to be an absolute URI. */
export const DEFAULT_AUDIENCE = 'urn:guard-aws:broker';
