import { createTokenVerifier } from '../auth/verify.js';
import { parseInvocation } from '../invocation/parse.js';
import { decide, loadPolicies } from '../policy/index.js';
import { sessionPolicyEnforces } from '../policy/enforceable.js';
import { openStore, storageFrom } from './storage.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps, BrokerRouteModule } from './deps.js';
import { cachingVerifier } from './verify-cache.js';

export interface ProductionOptions {
  /** Route modules to mount (approvals, transcripts, audit). */
  routes?: BrokerRouteModule[];
  /** Override any dependency (tests: STS client factory, log, clock…). */
  overrides?: Partial<Omit<BrokerDeps, 'config'>>;
  /** fetch used for OIDC discovery and the JWKS (tests block or redirect it). */
  fetch?: typeof fetch;
  /** Where GUARD_AWS_STORE_URL is read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The broker's real dependencies from its config: the policy files, the token verifier for the configured issuer,
 * the store (SQLite or PostgreSQL, migrated) and the same parser the client uses. Policies are loaded before the store is opened, so an
 * invalid policy (exit 78) leaves no file behind.
 */
export async function productionDeps(config: BrokerConfig, options: ProductionOptions = {}): Promise<Omit<BrokerDeps, 'config'>> {
  const policies = loadPolicies(config.policies);
  const verify = cachingVerifier(createTokenVerifier({
    issuer: config.issuer,
    audience: config.audience,
    ...(config.jwksUri ? { jwksUri: config.jwksUri } : {}),
    algorithms: config.algorithms,
    clockToleranceSec: config.clockToleranceSec,
    groupsClaim: config.groupsClaim,
    ...(config.requiredClaims ? { requiredClaims: config.requiredClaims } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  }));
  const deps: Omit<BrokerDeps, 'config' | 'store'> = {
    verify,
    parse: parseInvocation,
    decide: (input) => decide(policies, input),
    enforceable: (input) => sessionPolicyEnforces({ policy: policies, ...input }),
    masking: policies.masking,
    routes: options.routes ?? [],
    ...options.overrides,
  };
  return { ...deps, store: options.overrides?.store ?? (await openStore(storageFrom(config.storage, options.env ?? process.env))) };
}
