/**
 * A minimal real HTTP server standing in for the broker's unauthenticated GET /v1/config (the real broker is built
 * separately; the login path only needs this one endpoint). Also records every request it sees.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrokerConfigResponse } from '../../src/api/types.js';

export interface FakeBroker {
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

export async function startConfigServer(
  config: BrokerConfigResponse | (() => { status: number; body: string }),
): Promise<FakeBroker> {
  const requests: FakeBroker['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.method === 'GET' && req.url === '/v1/config') {
      const r = typeof config === 'function' ? config() : { status: 200, body: JSON.stringify(config) };
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(r.body);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"code":"not_found","message":"not found"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

export function brokerConfigFor(idp: { issuer: string; clientId: string; audience: string; groupsClaim?: string }): BrokerConfigResponse {
  return {
    issuer: idp.issuer,
    clientId: idp.clientId,
    audience: idp.audience,
    ...(idp.groupsClaim ? { groupsClaim: idp.groupsClaim } : {}),
    targets: [{ name: 'dev', account: '123456789012', region: 'us-east-1', default: true }],
    version: 'test',
  };
}
