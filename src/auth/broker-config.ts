import { z } from 'zod';
import { GuardError } from '../errors.js';
import type { BrokerConfigResponse } from '../api/types.js';

const Schema = z.object({
  issuer: z.string().min(1),
  clientId: z.string().min(1),
  audience: z.string().min(1),
  // exactOptional: JSON has no undefined, so the field is either a string or absent (BrokerConfigResponse).
  groupsClaim: z.string().min(1).exactOptional(),
  targets: z.array(z.object({ name: z.string(), account: z.string(), region: z.string(), default: z.boolean() })),
  version: z.string(),
});

/**
 * GET /v1/config: the broker tells the client which identity provider to log in with, under which client id, and
 * for which audience — so a person only ever needs the broker's URL. Unauthenticated by design (it holds no secret).
 */
export async function fetchBrokerConfig(brokerUrl: string, f: typeof fetch = fetch): Promise<BrokerConfigResponse> {
  // Several brokers (comma-separated): a GET, so any of them may answer (src/api/broker-urls.ts); in list order.
  const urls = brokerUrl.split(',').map((u) => u.trim()).filter(Boolean);
  let lastError: unknown;
  for (const base of urls) {
    try {
      return await fetchOne(base, f);
    } catch (e) {
      if (!(e instanceof GuardError) || e.code !== 'broker_unreachable') throw e;
      lastError = e;
    }
  }
  throw lastError ?? new GuardError('broker_unreachable', 'no broker URL to ask for its configuration');
}

async function fetchOne(brokerUrl: string, f: typeof fetch): Promise<BrokerConfigResponse> {
  const url = `${brokerUrl.replace(/\/+$/, '')}/v1/config`;
  let res: Response;
  try {
    res = await f(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    throw new GuardError('broker_unreachable', `cannot reach the broker at ${brokerUrl} (GET /v1/config failed)`, { cause: e });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new GuardError('broker_unreachable', `the broker at ${brokerUrl} answered GET /v1/config with HTTP ${res.status}`);
  }
  const json = await res.json().catch(() => undefined);
  const parsed = Schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GuardError('config_invalid', `the broker at ${brokerUrl} sent an unexpected /v1/config: field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
