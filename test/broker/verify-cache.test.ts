import { describe, expect, it } from 'vitest';
import { cachingVerifier } from '../../src/broker/verify-cache.js';
import { GuardError } from '../../src/errors.js';

function counting(expOffsetMs: number | null, clock: { t: number }) {
  let calls = 0;
  const verify = async (token: string) => {
    calls++;
    if (token === 'bad') throw new GuardError('auth_rejected', 'token rejected: signature');
    return { subject: token, groups: [], ...(expOffsetMs === null ? {} : { expiresAt: new Date(clock.t + expOffsetMs) }) };
  };
  return { verify, calls: () => calls };
}

describe('cachingVerifier', () => {
  it('reuses a success within the TTL, then verifies again', async () => {
    const clock = { t: 1_000_000 };
    const v = counting(3_600_000, clock);
    const c = cachingVerifier(v.verify, { ttlMs: 60_000, now: () => clock.t });
    await c('a');
    await c('a');
    expect(v.calls()).toBe(1);
    clock.t += 60_001;
    await c('a');
    expect(v.calls()).toBe(2);
  });
  it('never answers from the cache past the token\'s expiry', async () => {
    const clock = { t: 1_000_000 };
    let expired = false;
    const verify = async (token: string) => {
      if (expired) throw new GuardError('auth_rejected', 'token rejected: token expired');
      return { subject: token, groups: [], expiresAt: new Date(1_000_000 + 5_000) };
    };
    const c = cachingVerifier(verify, { ttlMs: 60_000, now: () => clock.t });
    await c('a');
    clock.t += 5_000;
    expired = true;
    await expect(c('a')).rejects.toThrow(/expired/);
  });
  it('does not cache failures or tokens without an expiry', async () => {
    const clock = { t: 0 };
    const v = counting(null, clock);
    const c = cachingVerifier(v.verify, { now: () => clock.t });
    await expect(c('bad')).rejects.toThrow(GuardError);
    await expect(c('bad')).rejects.toThrow(GuardError);
    await c('noexp');
    await c('noexp');
    expect(v.calls()).toBe(4);
  });
  it('is bounded', async () => {
    const clock = { t: 0 };
    const v = counting(3_600_000, clock);
    const c = cachingVerifier(v.verify, { max: 2, now: () => clock.t });
    await c('a');
    await c('b');
    await c('c'); // evicts a
    await c('a');
    expect(v.calls()).toBe(4);
  });
});
