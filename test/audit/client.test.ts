import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditClient } from '../../src/audit/client.js';
import { isGuardError } from '../../src/errors.js';

// A real HTTP server standing in for a broker that breaks off an export half-way (a crash or a dropped
// connection); the real broker cannot be made to do that on cue.
let server: Server;
let brokerUrl: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (req.url?.startsWith('/v1/audit/export?since=')) {
      res.end('{"format":"guard-aws-audit"}\n');
      return;
    }
    res.write('{"format":"guard-aws-audit","version":1}\n{"seq":1,');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  brokerUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('AuditClient.export', () => {
  const client = () => new AuditClient({ brokerUrl, token: async () => 'token' });

  it('passes the stream through piece by piece', async () => {
    let text = '';
    await client().export({ since: '2026-01-01T00:00:00Z' }, (t) => void (text += t));
    expect(text).toBe('{"format":"guard-aws-audit"}\n');
  });

  it('a broker that stops sending part-way is a one-line broker_unreachable error, not a crash', async () => {
    let text = '';
    const err = await client()
      .export({}, (t) => void (text += t))
      .then(() => undefined, (e: unknown) => e);
    expect(text).toContain('"format":"guard-aws-audit"');
    expect(isGuardError(err) && err.code).toBe('broker_unreachable');
    expect((err as Error).message).toMatch(/stopped sending the export part-way/);
    expect((err as Error).message).not.toContain('\n');
  });
});
