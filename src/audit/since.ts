import { GuardError } from '../errors.js';

const REL = /^(\d{1,6})(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * `--since` values: an ISO-8601 date or date-time (`2026-11-25`, `2026-11-25T10:00:00Z`), or a duration back
 * from now (`30m`, `24h`, `7d`, `2w`). Returns an ISO-8601 UTC time; anything else is a usage error.
 */
export function parseSince(value: string, now: number, flag = '--since'): string {
  const rel = REL.exec(value.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2]!]!).toISOString();
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const ms = Date.parse(value.trim());
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  throw new GuardError('usage', `${flag}: ${JSON.stringify(value)} is neither an ISO-8601 time nor a duration like 24h or 7d`);
}
