import { GuardError } from '../errors.js';
import { clientCode, wireCode } from './errors.js';
import { fetchSend, nodeHttpSend, type HttpSend } from './http-transport.js';
import { brokerUrls, idempotent, neverSent, orderUrls, rememberHealthy } from './broker-urls.js';
import { credentialHint, rejectionReason } from './credential-hint.js';
import type {
  BrokerConfigResponse,
  ErrorResponse,
  GrantRequest,
  GrantResponse,
  ApprovalSummary,
  RunRequest,
  RunResponse,
} from './types.js';

export type FetchLike = typeof fetch;

/** The broker answered that an approval is needed (or pending) for this exact call. */
export interface ApprovalNeeded {
  kind: 'approval';
  code: 'approval_required' | 'approval_pending';
  approval: ApprovalSummary;
  rule: string | null;
  reason: string;
}

export interface Granted {
  kind: 'granted';
  grant: GrantResponse;
}

/** The broker runs the call itself (POST /v1/runs answered `execution: broker`): no credentials. */
export interface RunOnBroker {
  kind: 'broker';
  run: Extract<RunResponse, { execution: 'broker' }>;
}

/** Largest answer body read as JSON (a grant or an approval list is a few KiB; this bounds a hostile broker). */
const MAX_ANSWER_BODY = 16 * 1024 * 1024;

/** Default total deadline of one broker request (connect to last byte), in milliseconds. */
export const DEFAULT_BROKER_DEADLINE_MS = 30_000;

/**
 * The total deadline of every broker request: `GUARD_AWS_BROKER_TIMEOUT` seconds (0 < s ≤ 3600), default 30. A
 * request that has no complete answer by then fails with exit 69; nothing a peer sends can extend it.
 */
export function brokerDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.GUARD_AWS_BROKER_TIMEOUT;
  if (raw === undefined || raw === '') return DEFAULT_BROKER_DEADLINE_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0 || s > 3600) {
    throw new GuardError('usage', `GUARD_AWS_BROKER_TIMEOUT=${JSON.stringify(raw.slice(0, 20))}: expected seconds between 0 and 3600`);
  }
  return Math.round(s * 1000);
}

/** With several broker URLs, a connect (and TLS handshake) not done by then moves on to the next URL. */
export const FAILOVER_CONNECT_MS = 5_000;

/** 502/503/504: the broker (or the proxy in front of it) cannot serve now; an idempotent request tries the next. */
const UNAVAILABLE_STATUSES = new Set([502, 503, 504]);

/**
 * Talks to the broker's /v1 API. Maps every failure to a GuardError with the documented exit code:
 * network failures and 5xx → broker_unreachable (69; idp_unreachable, also 69, when the broker cannot reach its
 * identity provider), 401 → auth_rejected (67), any other refusal by its wire code (brokerError), malformed
 * answers → broker_unreachable (a broker we cannot understand is as good as none: fail closed).
 *
 * `baseUrl` may list several brokers, comma-separated: a request goes to them in turn under the failover rule of
 * src/api/broker-urls.ts (idempotent requests on any failure; others only when they provably never reached a
 * broker). The timeout is the deadline of the whole request, across every URL tried.
 */
export class BrokerClient {
  private readonly send: HttpSend;
  private readonly urls: string[];
  /** The broker URL that gave the last answer (a remote run's streams must go to the broker that started it). */
  answeredBy: string | undefined;
  constructor(
    readonly baseUrl: string,
    fetchImpl?: FetchLike,
    private readonly timeoutMs = brokerDeadlineMs(),
    /** Where the credentials came from decides the advice on a 401 (src/api/credential-hint.ts). */
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly now: () => number = Date.now,
  ) {
    this.send = fetchImpl && fetchImpl !== globalThis.fetch ? fetchSend(fetchImpl) : nodeHttpSend;
    this.urls = brokerUrls(baseUrl);
    if (this.urls.length === 0) this.urls = [baseUrl];
  }

  private static url(base: string, path: string): string {
    return new URL(path, base.endsWith('/') ? base : `${base}/`).toString();
  }

  /**
   * One request with a JSON body (`body`), or with raw bytes (`bytes`, application/octet-stream: a transcript body
   * chunk); the answer is JSON either way.
   */
  async request<T>(method: string, path: string, token: string | null, body?: unknown, bytes?: Uint8Array): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (bytes !== undefined) headers['content-type'] = 'application/octet-stream';
    else if (body !== undefined) headers['content-type'] = 'application/json';
    const several = this.urls.length > 1;
    const order = several ? orderUrls(this.urls, this.env, this.now()) : this.urls;
    const mayRepeat = idempotent(method, path);
    const endAt = this.now() + this.timeoutMs;
    const failures: string[] = [];
    for (let i = 0; i < order.length; i++) {
      const base = order[i]!;
      const last = i === order.length - 1;
      const left = endAt - this.now();
      if (left <= 0) break;
      let res: { status: number; text: string };
      try {
        res = await this.send(BrokerClient.url(base, path), {
          method,
          headers,
          ...(bytes !== undefined ? { body: bytes } : body === undefined ? {} : { body: JSON.stringify(body) }),
          timeoutMs: left,
          ...(several && !last ? { connectTimeoutMs: Math.min(FAILOVER_CONNECT_MS, left) } : {}),
        });
      } catch (e) {
        const why = isTimeout(e) ? `no complete answer within ${this.timeoutMs / 1000} s (the deadline of every broker request; GUARD_AWS_BROKER_TIMEOUT)` : describeNetworkError(e);
        if (!several) throw new GuardError('broker_unreachable', `broker unreachable at ${base}: ${why}`, { cause: e });
        if (!mayRepeat && !neverSent(e)) {
          // It reached a broker, which may have acted on it: asking another would act twice (a second grant).
          throw new GuardError(
            'broker_unreachable',
            `the broker at ${base} took the ${method} ${path.split('?')[0]} request and broke off before answering (${why}); it was not sent to another broker, because the first may have acted on it — run the command again`,
            { cause: e, details: { broker: base, tried: [...failures, `${base}: ${why}`], resent: false } },
          );
        }
        failures.push(`${base}: ${why}`);
        continue;
      }
      if (several && mayRepeat && !last && UNAVAILABLE_STATUSES.has(res.status)) {
        failures.push(`${base}: HTTP ${res.status}`);
        continue;
      }
      if (several && failures.length > 0) rememberHealthy(this.urls, base, this.env, this.now());
      this.answeredBy = base;
      return this.answer<T>(base, res);
    }
    throw new GuardError('broker_unreachable', `no broker reachable: ${failures.join('; ') || `no time left within ${this.timeoutMs / 1000} s`}`, {
      details: { tried: failures },
    });
  }

  private answer<T>(base: string, res: { status: number; text: string }): { status: number; body: T } {
    const text = res.text;
    let parsed: unknown;
    try {
      parsed = text.length ? JSON.parse(text.slice(0, MAX_ANSWER_BODY)) : {};
    } catch {
      throw new GuardError('broker_unreachable', `broker at ${base} answered ${res.status} with a body that is not JSON`);
    }
    if (res.status >= 500) {
      const msg = (parsed as ErrorResponse)?.error?.message ?? 'internal error';
      if (wireCode((parsed as ErrorResponse)?.error?.code) === 'idp_unreachable') {
        throw new GuardError('idp_unreachable', `the broker cannot reach its identity provider: ${String(msg).slice(0, 200)}`);
      }
      throw new GuardError('broker_unreachable', `broker error ${res.status}: ${String(msg).slice(0, 200)}`);
    }
    if (res.status === 401) {
      // By code, not by the broker's message (which carries its own advice for people): a CI job is told to fix
      // its token, a person to log in — once.
      const code = (parsed as ErrorResponse)?.error?.code;
      throw new GuardError('auth_rejected', `the broker at ${base} refused the credentials: ${rejectionReason(code)}; ${credentialHint(this.env)}`, {
        details: { brokerCode: code },
      });
    }
    return { status: res.status, body: parsed as T };
  }

  async config(): Promise<BrokerConfigResponse> {
    const r = await this.request<BrokerConfigResponse>('GET', 'v1/config', null);
    if (r.status !== 200 || typeof r.body?.issuer !== 'string') {
      throw new GuardError('broker_unreachable', `broker at ${this.baseUrl} did not return its configuration (${r.status})`);
    }
    return r.body;
  }

  /** Asks for a grant for exactly one invocation. */
  async grant(token: string, req: GrantRequest): Promise<Granted | ApprovalNeeded> {
    const r = await this.request<GrantResponse | ErrorResponse>('POST', 'v1/grants', token, req);
    if (r.status === 200 || r.status === 201) {
      const g = r.body as GrantResponse;
      if (!g?.credentials?.accessKeyId || !g.credentials.secretAccessKey || !Array.isArray(g.argv)) {
        throw new GuardError('broker_unreachable', 'the broker answered a grant without credentials');
      }
      return { kind: 'granted', grant: g };
    }
    const err = (r.body as ErrorResponse)?.error;
    const code = err?.code ?? 'unknown';
    if ((code === 'approval_required' || code === 'approval_pending') && err?.approval) {
      return { kind: 'approval', code, approval: err.approval, rule: err.rule ?? null, reason: err.reason ?? err.message };
    }
    throw brokerError(r.status, err);
  }
}

/**
 * POST /v1/runs. `no_runs_api`: an older broker without the run API (404: this route looks nothing up, so a 404
 * means the path is unknown); the caller then asks for a grant as before.
 */
export async function askRun(client: BrokerClient, token: string, req: RunRequest): Promise<Granted | RunOnBroker | ApprovalNeeded | { kind: 'no_runs_api' }> {
  const r = await client.request<RunResponse | ErrorResponse>('POST', 'v1/runs', token, req);
  if (r.status === 200 || r.status === 201) {
    const a = r.body as RunResponse;
    if (a?.execution === 'local') {
      const g = a.grant;
      if (!g?.credentials?.accessKeyId || !g.credentials.secretAccessKey || !Array.isArray(g.argv)) {
        throw new GuardError('broker_unreachable', 'the broker answered a local run without credentials');
      }
      return { kind: 'granted', grant: g };
    }
    if (a?.execution === 'broker' && typeof a.runId === 'string' && Array.isArray(a.argv)) return { kind: 'broker', run: a };
    throw new GuardError('broker_unreachable', 'the broker answered a run request it did not explain');
  }
  const err = (r.body as ErrorResponse)?.error;
  const code = err?.code ?? 'unknown';
  if (r.status === 404 && wireCode(code) === 'not_found') return { kind: 'no_runs_api' };
  if ((code === 'approval_required' || code === 'approval_pending') && err?.approval) {
    return { kind: 'approval', code, approval: err.approval, rule: err.rule ?? null, reason: err.reason ?? err.message };
  }
  throw brokerError(r.status, err);
}

/**
 * Maps a broker error body to a GuardError through the wire vocabulary (src/api/errors.ts): each code the broker
 * writes names the GuardError it stands for, so its exit code is the documented one. A code this version does not
 * know (a newer broker) is judged by its status alone. `details` keep the broker's code, rule, reason and any
 * approval for `--json` output.
 */
export function brokerError(status: number, err: ErrorResponse['error'] | undefined): GuardError {
  const raw: string = typeof err?.code === 'string' ? err.code : 'unknown';
  const wire = wireCode(raw);
  const message = String(err?.message ?? `broker answered ${status}`).slice(0, 300);
  const details = { brokerCode: raw, status, rule: err?.rule ?? null, reason: err?.reason, ...(err?.approval ? { approval: err.approval } : {}) };
  const ruleText = err?.rule ? ` (rule ${err.rule})` : '';
  // `internal` is the broker's bug, not ours: the broker is as good as unreachable.
  const code = wire === undefined || wire === 'internal' ? undefined : clientCode(wire);
  switch (code) {
    case undefined:
      if (status === 403) return new GuardError('denied', `denied${ruleText}: ${message}`, { details });
      if (status >= 400 && status < 500) return new GuardError('usage', `broker refused the request (${status} ${raw}): ${message}`, { details });
      return new GuardError('broker_unreachable', `unexpected broker answer ${status} ${raw}: ${message}`, { details });
    case 'parse':
      return new GuardError('parse', `the broker could not accept this invocation: ${message}`, { details });
    case 'denied':
    case 'policy_too_large':
      return new GuardError(code, `denied${ruleText}: ${err?.reason ?? message}`, { details });
    default:
      return new GuardError(code, message, { details });
  }
}

function isTimeout(e: unknown): boolean {
  const name = (e as Error)?.name;
  return name === 'TimeoutError' || (name === 'AbortError' && /timeout|timed out/i.test(String((e as Error).message)));
}

function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string } })?.cause;
  if (cause?.code) return cause.code;
  // node:http's own errors carry the code themselves ("connect ECONNREFUSED 127.0.0.1:9" says no more).
  const own = (e as { code?: unknown })?.code;
  if (typeof own === 'string' && /^E[A-Z_]+$/.test(own)) return own;
  if ((e as Error)?.name === 'TimeoutError') return 'timed out';
  return (e as Error)?.message ?? String(e);
}
