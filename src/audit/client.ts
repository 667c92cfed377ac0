import type { BrokerSession } from '../auth/broker-session.js';
import { brokerUrls } from '../api/broker-urls.js';
import { BrokerClient, brokerError } from '../api/broker-client.js';
import { GuardError } from '../errors.js';
import { credentialHint, rejectionReason } from '../api/credential-hint.js';
import type { ErrorResponse } from '../api/types.js';
import type { AuditSummary, UnreportedGrant } from './summary.js';
import type { AuditHead, AuditRecord, ChainResult } from './types.js';
import type { BodiesResult } from './bodies/verify.js';

/** Filters for `audit list`; a flag that was not given is passed as undefined. */
export interface AuditQuery {
  user?: string | undefined;
  since?: string | undefined;
  limit?: number | undefined;
}

/** How the audit commands reach the broker (auth/broker-session.ts). */
export type BrokerLink = Pick<BrokerSession, 'brokerUrl' | 'token' | 'fetch'>;

export interface VerifyAnswer extends ChainResult {
  head: AuditHead | null;
  kid: string;
  /** With `bodies`: the re-hash of every transcript body in storage (src/audit/bodies/verify.ts). */
  bodies?: BodiesResult;
}

/** Client for the auditor routes (/v1/audit/*) and GET /v1/keys. */
export class AuditClient {
  private readonly client: BrokerClient;

  constructor(private readonly link: BrokerLink) {
    this.client = new BrokerClient(link.brokerUrl, link.fetch, 120_000);
  }

  private async get<T>(path: string, auth = true): Promise<T> {
    const r = await this.client.request<T | ErrorResponse>('GET', path, auth ? await this.link.token() : null);
    if (r.status !== 200) throw auditError(r.status, (r.body as ErrorResponse)?.error);
    return r.body as T;
  }

  async list(q: AuditQuery): Promise<AuditSummary[]> {
    return (await this.get<{ records: AuditSummary[] }>(`v1/audit/records${qs({ ...q, limit: q.limit?.toString() })}`)).records;
  }

  async unreported(q: AuditQuery): Promise<UnreportedGrant[]> {
    return (await this.get<{ unreported: UnreportedGrant[] }>(`v1/audit/records${qs({ ...q, limit: q.limit?.toString(), unreported: 'true' })}`)).unreported;
  }

  async show(id: string): Promise<{ record: AuditRecord; summary: AuditSummary }> {
    return this.get(`v1/audit/records/${encodeURIComponent(id)}`);
  }

  async verify(o: { bodies?: boolean } = {}): Promise<VerifyAnswer> {
    return this.get(o.bodies ? 'v1/audit/verify?bodies=true' : 'v1/audit/verify');
  }

  /** One transcript body from the broker's storage, as it arrives (never buffered whole). */
  async body(sha256: string): Promise<AsyncIterable<Uint8Array>> {
    const res = await this.open(`v1/audit/bodies/${encodeURIComponent(sha256)}`);
    return res.body as unknown as AsyncIterable<Uint8Array>;
  }

  private async open(path: string): Promise<Response> {
    const url = new URL(path, this.link.brokerUrl.endsWith('/') ? this.link.brokerUrl : `${this.link.brokerUrl}/`);
    let res: Response;
    try {
      res = await (this.link.fetch ?? fetch)(url, { headers: { authorization: `Bearer ${await this.link.token()}` }, signal: AbortSignal.timeout(EXPORT_DEADLINE_MS) });
    } catch (e) {
      throw new GuardError('broker_unreachable', `broker unreachable at ${this.link.brokerUrl}`, { cause: e });
    }
    if (res.status !== 200 || !res.body) {
      const body = (await res.json().catch(() => ({}))) as ErrorResponse;
      throw auditError(res.status, body?.error);
    }
    return res;
  }

  async keys(): Promise<unknown> {
    return this.get('v1/keys', false);
  }

  /** Streams the JSONL export; `write` receives it piece by piece as it arrives. */
  async export(q: { since?: string | undefined }, write: (text: string) => void | Promise<void>): Promise<void> {
    const url = new URL(`v1/audit/export${qs(q)}`, this.link.brokerUrl.endsWith('/') ? this.link.brokerUrl : `${this.link.brokerUrl}/`);
    let res: Response;
    // An export may be long, but not endless: a broker or proxy that trickles bytes is cut after EXPORT_DEADLINE_MS.
    const signal = AbortSignal.timeout(EXPORT_DEADLINE_MS);
    const failed = (e: unknown) =>
      new GuardError(
        'broker_unreachable',
        (e as Error)?.name === 'TimeoutError' || signal.aborted
          ? `broker at ${this.link.brokerUrl}: the export did not complete within ${EXPORT_DEADLINE_MS / 60_000} minutes`
          : `broker unreachable at ${this.link.brokerUrl}`,
        { cause: e },
      );
    // Several brokers (comma-separated): an export is a GET, so the next one is asked when one cannot be reached
    // (src/api/broker-urls.ts); once one answers, the export comes from it alone.
    const bases = brokerUrls(this.link.brokerUrl);
    for (let i = 0; ; i++) {
      const base = bases[i] ?? this.link.brokerUrl;
      const at = bases.length > 1 ? new URL(`v1/audit/export${qs(q)}`, `${base}/`) : url;
      try {
        res = await (this.link.fetch ?? fetch)(at, { headers: { authorization: `Bearer ${await this.link.token()}` }, signal });
        break;
      } catch (e) {
        if (i + 1 < bases.length && !signal.aborted) continue;
        throw failed(e);
      }
    }
    if (res.status !== 200) {
      const body = (await res.json().catch(() => ({}))) as ErrorResponse;
      throw auditError(res.status, body?.error);
    }
    if (!res.body) throw new GuardError('broker_unreachable', `the broker at ${this.link.brokerUrl} answered the export with no body`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      let part: ReadableStreamReadResult<Uint8Array>;
      try {
        part = await reader.read();
      } catch (e) {
        // Only reading is caught here: a failing `write` (a full disk) keeps its own error.
        if (signal.aborted) throw failed(e);
        throw new GuardError('broker_unreachable', `the broker at ${this.link.brokerUrl} stopped sending the export part-way; run the export again`, { cause: e });
      }
      if (part.done) break;
      await write(dec.decode(part.value, { stream: true }));
    }
    const rest = dec.decode();
    if (rest) await write(rest);
  }
}

/** Total deadline of `audit export` (connect to last byte): long logs take time, a trickling peer cannot stall it. */
export const EXPORT_DEADLINE_MS = 30 * 60_000;

function qs(q: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** 403 on the audit routes means "not an auditor": exit 77 with the broker's message. */
function auditError(status: number, err: ErrorResponse['error'] | undefined): GuardError {
  if (status === 404) return new GuardError('usage', err?.message ?? 'not found', { details: { brokerCode: err?.code } });
  if (status === 401) return new GuardError('auth_rejected', `the broker refused the credentials: ${rejectionReason(err?.code)}; ${credentialHint(process.env)}`);
  return brokerError(status, err);
}
