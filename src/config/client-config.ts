import { GuardError } from '../errors.js';
import { clientConfigPath } from './paths.js';
import { isLoopback } from './urls.js';
import { readOptionalFile, writePrivateFile } from './private-file.js';

/** What `guard-aws login` remembers so later commands need no flags. No secrets live here. */
export interface ClientConfig {
  broker?: string;
}

export async function readClientConfig(env: NodeJS.ProcessEnv = process.env): Promise<ClientConfig> {
  const path = clientConfigPath(env);
  const text = await readOptionalFile(path);
  if (text === undefined) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new GuardError('config_invalid', `${path}: not valid JSON (${(e as Error).message})`);
  }
  // Read on every call: checked by hand, not with a schema library (start-up time).
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GuardError('config_invalid', `${path}: field (root): expected an object`);
  }
  const broker = (json as { broker?: unknown }).broker;
  if (broker === undefined) return {};
  // One URL, or several comma-separated (brokers of one service, src/api/broker-urls.ts).
  if (typeof broker !== 'string' || !broker.split(',').every((u) => URL.canParse(u.trim()))) {
    throw new GuardError('config_invalid', `${path}: field broker: expected a URL (or several, comma-separated)`);
  }
  return { broker };
}

export async function writeClientConfig(config: ClientConfig, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await writePrivateFile(clientConfigPath(env), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * No broker from any source: one error, one exit code (64, a missing setting the caller supplies), wherever it is
 * noticed. Nothing is known yet, so the placeholder `URL` is literal here.
 */
export function noBrokerError(): GuardError {
  return new GuardError('usage', 'no broker: pass --broker URL, set GUARD_AWS_BROKER=URL, or log in once with `guard-aws login --broker URL`', {
    details: { missing: 'broker' },
  });
}

/** Broker URL resolution: `--broker` flag > GUARD_AWS_BROKER > the broker saved at login. */
export async function resolveBrokerUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const chosen = flag ?? (env.GUARD_AWS_BROKER || undefined) ?? (await readClientConfig(env)).broker;
  const where = flag !== undefined ? '--broker' : env.GUARD_AWS_BROKER ? 'GUARD_AWS_BROKER' : clientConfigPath(env);
  return chosen === undefined ? undefined : normalizeBrokerUrl(chosen, where, env);
}

/**
 * A broker setting, normalised: one URL, or several comma-separated ones (several brokers of one service: the client
 * fails over between them, src/api/broker-urls.ts), each checked and normalised like a single one, duplicates
 * dropped, the order kept (it is the order they are tried in). The normalised list is the login's key, so the same
 * list always maps to the same login.
 */
export function normalizeBrokerUrl(raw: string, where = 'broker URL', env: NodeJS.ProcessEnv = process.env): string {
  if (!raw.includes(',')) return normalizeOneBrokerUrl(raw, where, env);
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new GuardError('usage', `${where}: an empty URL in the comma-separated list`);
  const out: string[] = [];
  for (const item of items) {
    const u = normalizeOneBrokerUrl(item, where, env);
    if (!out.includes(u)) out.push(u);
  }
  return out.join(',');
}

/** An http(s) URL without query, fragment or trailing slash, so the same broker always maps to the same login. */
function normalizeOneBrokerUrl(raw: string, where: string, env: NodeJS.ProcessEnv): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new GuardError('usage', `${where}: not a URL: ${JSON.stringify(raw.slice(0, 200))}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new GuardError('usage', `${where}: must be an http(s) URL`);
  if (u.username || u.password) throw new GuardError('usage', `${where}: must not contain credentials`);
  // Bearer tokens go to the broker: TLS only, except on this machine (RFC 6750 §5.3). GUARD_AWS_INSECURE_HTTP=1
  // lifts this for lab setups.
  if (u.protocol === 'http:' && !isLoopback(u) && env.GUARD_AWS_INSECURE_HTTP !== '1') {
    throw new GuardError('usage', `${where}: ${u.origin} must use https (plain http is only allowed on loopback)`);
  }
  u.search = '';
  u.hash = '';
  return u.href.replace(/\/+$/, '');
}
