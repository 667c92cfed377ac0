import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ApprovalSummary } from '../api/types.js';
import { GuardError } from '../errors.js';
import { shellWords, visible, visibleText } from '../terminal-text.js';
import { VERSION } from '../version.js';
import type { ApprovalEventKind } from './service.js';

/**
 * Webhook notifications for approval requests and decisions.
 *
 * Every delivery is a POST with a JSON body and these headers:
 *   X-Guard-Aws-Event:      approval.requested | approval.approved | approval.denied | approval.withdrawn | approval.used
 *   X-Guard-Aws-Delivery:   an id that stays the same across retries of one event (receivers de-duplicate on it)
 *   X-Guard-Aws-Timestamp:  Unix seconds when this attempt was signed
 *   X-Guard-Aws-Signature:  sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 * The timestamp is inside the MAC so a captured request cannot be replayed later with a fresh timestamp;
 * receivers recompute the MAC over the raw bytes they received, compare in constant time, and refuse a
 * timestamp more than 5 minutes away from their clock (see verifyWebhookSignature).
 *
 * Delivery never blocks a decision: the event is written to the outbox with the change and posted afterwards by
 * whichever broker is alive (src/approvals/outbox.ts). Failed attempts (network error, timeout, 408, 429, 5xx) are
 * retried with exponential backoff and jitter, up to `maxAttempts`; other 4xx answers are final. Nothing secret is
 * sent: the summary's argv is already masked, and the shared secret only ever enters the MAC.
 */

export interface WebhookConfig {
  url: string;
  /** Shared secret for the HMAC (RFC 2104); at least 32 characters, e.g. `openssl rand -hex 32`. */
  secret: string;
  /** `json` (default): the event object. `slack`: a Slack incoming-webhook message `{text, blocks}`. */
  format?: 'json' | 'slack';
  /** Attempts per event, first included. Default 6. */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time. Default 1 s. */
  baseDelayMs?: number;
  /** Upper bound of one delay. Default 60 s. */
  maxDelayMs?: number;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs?: number;
}

export type WebhookEventType = `approval.${'requested' | Exclude<ApprovalEventKind, 'opened'>}`;

/** The JSON body of format `json`. */
export interface WebhookEvent {
  type: WebhookEventType;
  deliveryId: string;
  at: string;
  actor: string;
  comment?: string;
  approval: ApprovalSummary;
}

export const SIGNATURE_HEADER = 'X-Guard-Aws-Signature';
export const TIMESTAMP_HEADER = 'X-Guard-Aws-Timestamp';
export const DELIVERY_HEADER = 'X-Guard-Aws-Delivery';
export const EVENT_HEADER = 'X-Guard-Aws-Event';
export const DEFAULT_TOLERANCE_SEC = 300;

/** `sha256=<hex>` over `<timestamp>.<body>`. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Buffer): string {
  const mac = createHmac('sha256', secret);
  mac.update(`${timestamp}.`);
  mac.update(body);
  return `sha256=${mac.digest('hex')}`;
}

/**
 * For receivers: true when `signature` is the MAC of exactly these raw body bytes at `timestamp`, and the
 * timestamp is within `toleranceSec` of now. Compare on the raw bytes, before any JSON parsing.
 */
export function verifyWebhookSignature(v: {
  secret: string;
  body: string | Buffer;
  timestamp: string | undefined | null;
  signature: string | undefined | null;
  nowMs?: number;
  toleranceSec?: number;
}): boolean {
  if (!v.timestamp || !v.signature || !/^\d{1,12}$/.test(v.timestamp)) return false;
  const age = Math.abs((v.nowMs ?? Date.now()) / 1000 - Number(v.timestamp));
  if (age > (v.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return false;
  const expected = Buffer.from(signWebhook(v.secret, v.timestamp, v.body));
  const given = Buffer.from(v.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const TYPE: Record<ApprovalEventKind, WebhookEventType> = {
  opened: 'approval.requested',
  approved: 'approval.approved',
  denied: 'approval.denied',
  withdrawn: 'approval.withdrawn',
  used: 'approval.used',
};

/** The webhook event type of an approval change (the outbox, src/approvals/outbox.ts, stores events by it). */
export function webhookEventType(kind: ApprovalEventKind): WebhookEventType {
  return TYPE[kind];
}

/** Checks a webhook config (broker start-up); errors name the field. */
export function checkWebhookConfig(cfg: WebhookConfig): WebhookConfig {
  let url: URL;
  try {
    url = new URL(cfg.url);
  } catch {
    throw new GuardError('config_invalid', 'approvals.webhook.url: not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new GuardError('config_invalid', 'approvals.webhook.url: must be http(s)');
  if (typeof cfg.secret !== 'string' || cfg.secret.length < 32) {
    throw new GuardError('config_invalid', 'approvals.webhook.secret: at least 32 characters are required (e.g. `openssl rand -hex 32`)');
  }
  const int = (v: number | undefined, name: string, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) {
      throw new GuardError('config_invalid', `approvals.webhook.${name}: a whole number from ${min} to ${max}`);
    }
  };
  int(cfg.maxAttempts, 'maxAttempts', 1, 20);
  int(cfg.baseDelayMs, 'baseDelayMs', 1, 3_600_000);
  int(cfg.maxDelayMs, 'maxDelayMs', 1, 86_400_000);
  int(cfg.timeoutMs, 'timeoutMs', 1, 300_000);
  if (cfg.format !== undefined && cfg.format !== 'json' && cfg.format !== 'slack') {
    throw new GuardError('config_invalid', 'approvals.webhook.format: json or slack');
  }
  return cfg;
}

export function webhookBody(event: WebhookEvent, format: 'json' | 'slack'): string {
  return JSON.stringify(format === 'slack' ? slackMessage(event) : event);
}

/** What one delivery attempt came to: delivered, or why not and whether a later try may pass. */
export type WebhookAttempt = { ok: true } | { ok: false; outcome: string; retryable: boolean; retryAfterMs: number };

/**
 * One signed POST of an event's body (the outbox's delivery loop, src/approvals/outbox.ts).
 * 408/429/5xx may pass on a later try; other 4xx (bad signature, gone…) will not; 429's Retry-After is honoured.
 */
export async function postWebhook(
  cfg: { url: string; secret: string },
  f: typeof fetch,
  o: { type: string; deliveryId: string; body: string; nowMs: number; timeoutMs: number },
): Promise<WebhookAttempt> {
  const ts = Math.floor(o.nowMs / 1000);
  try {
    const res = await f(cfg.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': `guard-aws/${VERSION}`,
        [EVENT_HEADER]: o.type,
        [DELIVERY_HEADER]: o.deliveryId,
        [TIMESTAMP_HEADER]: String(ts),
        [SIGNATURE_HEADER]: signWebhook(cfg.secret, ts, o.body),
      },
      body: o.body,
      redirect: 'error',
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return { ok: true };
    const ra = Number(res.headers.get('retry-after'));
    return {
      ok: false,
      outcome: `HTTP ${res.status}`,
      retryable: res.status === 408 || res.status === 429 || res.status >= 500,
      retryAfterMs: res.status === 429 && Number.isFinite(ra) && ra > 0 ? ra * 1000 : 0,
    };
  } catch (e) {
    const outcome = (e as Error)?.name === 'TimeoutError' ? 'timed out' : ((e as { cause?: { code?: string } })?.cause?.code ?? (e as Error)?.name ?? 'error');
    return { ok: false, outcome, retryable: true, retryAfterMs: 0 };
  }
}

/** Exponential backoff with jitter (half fixed, half random) so several brokers do not retry in step. */
export function retryDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, retryAfterMs: number, random: () => number): number {
  const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
  return Math.min(maxDelayMs, Math.max(retryAfterMs, Math.round(exp / 2 + (exp / 2) * random())));
}

/** A Slack incoming-webhook message (text for notifications, Block Kit sections for the channel). */
export function slackMessage(e: WebhookEvent): { text: string; blocks: unknown[] } {
  // Requester-controlled text (argv, names, reason, comments, parameters) with control characters and bidi
  // overrides shown as escapes: a chat client reorders and hides them as a terminal does.
  const a = { ...e.approval, requester: visible(e.approval.requester), reason: visible(e.approval.reason) };
  if (a.requesterName) a.requesterName = visible(a.requesterName);
  const comment = e.comment === undefined ? undefined : visible(e.comment);
  const actor = visible(e.actor);
  const cmd = `aws ${shellWords(a.argv)}`;
  const what: Record<WebhookEventType, string> = {
    'approval.requested': `${a.requester} asks to run \`${cmd}\` on ${a.target}`,
    'approval.approved':
      a.status === 'approved'
        ? `${actor} approved ${a.id}; ${a.requester} may now run it once`
        : `${actor} approved ${a.id} (${a.approvals.length} of ${a.required})`,
    'approval.denied': `${actor} denied ${a.id}`,
    'approval.withdrawn': `${a.requester} withdrew ${a.id}`,
    'approval.used': `${a.requester} ran the approved call ${a.id}`,
  };
  const text = `guard-aws: ${what[e.type]}${comment ? ` — “${comment}”` : ''}`;
  const fields = [
    `*Request* \`${a.id}\` (${a.status})`,
    `*Requester* ${a.requesterName ? `${a.requesterName} (${a.requester})` : a.requester}`,
    `*Target* ${a.target} / ${a.region}`,
    `*Rule* ${a.rule ?? '(default)'}: ${a.ruleReason}`,
    `*Actions* ${a.actions.join(', ') || '–'}`,
    `*Risks* ${a.risks.join(', ') || '–'}`,
    `*Approvers* ${a.approverGroups.join(', ')} (${a.approvals.length}/${a.required})`,
    `*Expires* ${a.expiresAt}`,
  ];
  const blocks: unknown[] = [
    // Slack caps a section's text at 3,000 characters and a field at 2,000.
    { type: 'section', text: { type: 'mrkdwn', text: mrkdwn(text).slice(0, 3000) } },
    { type: 'section', text: { type: 'mrkdwn', text: '```' + mrkdwn(cmd).replace(/```/g, "'''").slice(0, 2900) + '```' } },
    { type: 'section', fields: fields.map((t) => ({ type: 'mrkdwn', text: mrkdwn(t).slice(0, 2000) })) },
  ];
  if (a.reason) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: mrkdwn(`Reason: ${a.reason}`).slice(0, 2000) }] });
  // The decoded parameters (user-data, file:// contents, --cli-input-json), as `approvals show` has them; Slack
  // allows 50 blocks a message, so at most 20 parameters get a block and the rest are named.
  const params = a.parameters ?? [];
  for (const p of params.slice(0, 20)) {
    const meta = [p.encoding, p.source ? `from ${p.source}` : undefined, `${p.bytes} bytes`, p.truncated ? `cut; sha256 ${p.sha256}` : undefined, p.secretsMasked ? 'secrets inside masked' : undefined];
    const head = `*${visible(p.name)}* (${meta.filter(Boolean).map((m) => visible(m!)).join(', ')})`;
    const shown = visibleText(p.value).replace(/```/g, "'''");
    const clipped = shown.length > 2400 ? `${shown.slice(0, 2400)}\n… (cut here; guard-aws approvals show ${a.id} has more)` : shown;
    const body = p.masked ? '<masked> (secret)' : '```' + clipped + '```';
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: mrkdwn(`${head}\n${body}`).slice(0, 2900) } });
  }
  if (params.length > 20) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: mrkdwn(`and ${params.length - 20} more parameters: guard-aws approvals show ${a.id}`) }] });
  if (e.type === 'approval.requested') {
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          // The console link is ours (publicUrl + an id of [a-z2-7_]), so Slack's <url|text> syntax cannot be broken out of.
          text: `Decide with \`guard-aws approvals approve ${a.id}\` or \`guard-aws approvals deny ${a.id} --comment …\`${a.url ? ` — or in the console: <${a.url}|${a.id}>` : ''}`,
        },
      ],
    });
  }
  return { text: mrkdwn(text), blocks };
}

/** Slack asks for &, < and > to be escaped in message text (Slack API docs, "Formatting text for app surfaces"). */
function mrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
