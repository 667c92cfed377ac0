import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BrokerClient, brokerDeadlineMs } from '../../src/api/broker-client.js';
import { nodeHttpSend } from '../../src/api/http-transport.js';
import { closingServer, drippingServer, silentServer, slowServer, type FaultServer } from './helpers.js';
import { rejection } from '../helpers/rejection.js';

// issue 12 item 3: the socket timeout reset on every byte, so a peer dripping one byte at a time kept a call
// waiting for ever. Every broker request now has a total deadline.
describe('broker requests have a total deadline', () => {
  let drip: FaultServer;
  let silent: FaultServer;
  let closing: FaultServer;
  let slow: FaultServer;
  beforeAll(async () => {
    [drip, silent, closing, slow] = await Promise.all([drippingServer(200), silentServer(), closingServer(), slowServer(300)]);
  });
  afterAll(async () => {
    await Promise.all([drip, silent, closing, slow].map((s) => s?.close()));
  });

  test('a dripping answer is cut at the deadline, not kept alive by each byte', async () => {
    const t0 = Date.now();
    const e = await nodeHttpSend(`${drip.url}/v1/config`, { method: 'GET', headers: {}, timeoutMs: 1_000 }).then(
      () => null,
      (err: Error) => err,
    );
    const took = Date.now() - t0;
    expect(e?.name).toBe('TimeoutError');
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2_500);
  });

  test('BrokerClient: dripping, silent and closing peers are 69 (broker_unreachable) with a clear message, within the deadline', async () => {
    for (const [server, words] of [
      [drip, /no complete answer within 1 s/],
      [silent, /no complete answer within 1 s/],
      [closing, /ECONNRESET|socket hang up|closed/],
    ] as const) {
      const t0 = Date.now();
      const e = await rejection(new BrokerClient(server.url, undefined, 1_000).config());
      expect(Date.now() - t0).toBeLessThan(2_500);
      expect(e.code).toBe('broker_unreachable');
      expect(e.exitCode).toBe(69);
      expect(e.message).toMatch(words);
      expect(e.message).not.toMatch(/\n/);
    }
  });

  test('a slow but complete answer inside the deadline is read normally (503 → 69 broker error)', async () => {
    const e = await rejection(new BrokerClient(slow.url, undefined, 2_000).config());
    expect(e.message).toMatch(/broker error 503/);
  });

  test('the deadline is 30 s by default and GUARD_AWS_BROKER_TIMEOUT (seconds) changes it; nonsense is refused', () => {
    expect(brokerDeadlineMs({})).toBe(30_000);
    expect(brokerDeadlineMs({ GUARD_AWS_BROKER_TIMEOUT: '5' })).toBe(5_000);
    expect(brokerDeadlineMs({ GUARD_AWS_BROKER_TIMEOUT: '0.5' })).toBe(500);
    for (const bad of ['0', '-1', 'x', '100000']) {
      expect(() => brokerDeadlineMs({ GUARD_AWS_BROKER_TIMEOUT: bad })).toThrow(/GUARD_AWS_BROKER_TIMEOUT/);
    }
  });
});
