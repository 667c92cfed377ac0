import * as client from 'openid-client';
import { GuardError } from '../errors.js';
import type { IoHost } from '../io/host.js';
import type { Clock } from './clock.js';
import { oauthReason } from './oidc.js';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

export interface PollOptions {
  clock: Clock;
  /** Extra token request parameters (the RFC 8707 `resource`). */
  parameters?: Record<string, string>;
  host?: IoHost;
}

/**
 * Polls the token endpoint exactly as RFC 8628 §3.4–§3.5 says:
 * - wait `interval` seconds (default 5) before every request;
 * - `authorization_pending`: keep polling at the same interval;
 * - `slow_down`: keep polling, and add 5 seconds to the interval for this and all later requests;
 * - `access_denied`: stop, the user refused; `expired_token`: stop, the code expired;
 * - a failed connection: back off (double the interval) and keep trying until the code expires (§3.5, last para).
 * Our own loop rather than openid-client's poller so the clock can be injected and every wait is observable.
 */
export async function pollDeviceToken(config: client.Configuration, da: DeviceAuthorization, opts: PollOptions) {
  const { clock } = opts;
  let intervalMs = (typeof da.interval === 'number' && da.interval > 0 ? da.interval : 5) * 1000;
  const deadline = clock.now() + da.expires_in * 1000;
  for (;;) {
    await clock.sleep(intervalMs);
    if (clock.now() >= deadline) {
      throw new GuardError('auth_expired', 'the login code expired before the login was completed; run `guard-aws login` again');
    }
    try {
      return await client.genericGrantRequest(config, DEVICE_CODE_GRANT, { device_code: da.device_code, ...opts.parameters });
    } catch (e) {
      if (e instanceof client.ResponseBodyError) {
        switch (e.error) {
          case 'authorization_pending':
            continue;
          case 'slow_down':
            intervalMs += 5000;
            continue;
          case 'access_denied':
            throw new GuardError('auth_rejected', 'the login was denied at the identity provider (access_denied); run `guard-aws login` to try again');
          case 'expired_token':
            throw new GuardError('auth_expired', 'the login code expired before the login was completed (expired_token); run `guard-aws login` again');
          default:
            throw new GuardError('auth_rejected', `the identity provider refused the login: ${oauthReason(e)}`);
        }
      }
      if (isNetworkError(e)) {
        intervalMs = Math.min(intervalMs * 2, 60_000);
        opts.host?.warn(`cannot reach the identity provider; retrying in ${Math.round(intervalMs / 1000)} s`);
        continue;
      }
      throw new GuardError('auth_rejected', `the identity provider's token response was not acceptable: ${oauthReason(e)}`, { cause: e });
    }
  }
}

function isNetworkError(e: unknown): boolean {
  // fetch rejects with a TypeError on connection failures; openid-client passes it through unchanged.
  return e instanceof TypeError || (e instanceof Error && (e.name === 'AbortError' || e.name === 'TimeoutError'));
}
