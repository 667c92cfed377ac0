import type { Caller } from '../policy/types.js';

/** Per-request values the middleware sets for handlers (hono `c.get(...)`). */
export interface BrokerEnv {
  Variables: {
    requestId: string;
    /** The verified caller; set by the bearer-auth middleware on every non-public route. */
    caller: Caller;
    /** The validated JSON body; set by validateJson(schema). */
    body: unknown;
  };
}
