/**
 * The modules a guarded call loads besides those of hot.ts, listed so the bundle puts them in one chunk (see
 * hot.ts and scripts/bundle.mjs). Every command but explain's fast path loads it; explain does not, so it does not
 * pay for node:http, node:https, node:child_process and node:crypto. Lazy imports in these modules (openid-client
 * for a login, the approval prompts, keytar) stay lazy.
 */
import './commands/run.js';
import '../client/run-invocation.js';
import '../client/transcript-link.js';
import '../runner/index.js';
import '../auth/broker-session.js';
import '../auth/access-token.js';
import '../auth/token-store.js';
import '../config/client-config.js';
