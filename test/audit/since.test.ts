import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/audit/since.js';
import { GuardError } from '../../src/errors.js';

const now = Date.parse('2026-11-25T12:00:00.000Z');

describe('parseSince', () => {
  it('takes durations back from now and ISO-8601 times, answering UTC ISO', () => {
    expect(parseSince('30m', now)).toBe('2026-11-25T11:30:00.000Z');
    expect(parseSince('24h', now)).toBe('2026-11-24T12:00:00.000Z');
    expect(parseSince('7d', now)).toBe('2026-11-18T12:00:00.000Z');
    expect(parseSince('2026-11-01', now)).toBe('2026-11-01T00:00:00.000Z');
    expect(parseSince('2026-11-25T10:00:00+02:00', now)).toBe('2026-11-25T08:00:00.000Z');
  });

  it('refuses anything else as a usage error naming the flag', () => {
    for (const bad of ['yesterday', '1y', '', '2026-13-45', '-5m']) {
      expect(() => parseSince(bad, now)).toThrow(GuardError);
      expect(() => parseSince(bad, now)).toThrow(/^--since: /);
    }
  });
});
