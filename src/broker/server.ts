import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { GuardError } from '../errors.js';
import { createBroker, type Broker } from './app.js';
import type { BrokerConfig } from './config.js';
import type { BrokerDeps } from './deps.js';

export interface RunningBroker {
  /** `http://host:port` it listens on (the real port when the config said 0). */
  url: string;
  broker: Broker;
  /** Stops accepting connections, waits for in-flight requests, then closes the broker (store included). */
  close(): Promise<void>;
}

/** Puts a broker on a socket with @hono/node-server. `deps.config` is ignored in favour of `config`. */
export async function startBroker(config: BrokerConfig, deps: Omit<BrokerDeps, 'config'>): Promise<RunningBroker> {
  const broker = createBroker({ ...deps, config });
  try {
    await broker.ready;
  } catch (e) {
    await broker.close();
    throw e;
  }
  let server: ServerType;
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    server = serve({ fetch: broker.app.fetch, hostname: config.listen.host, port: config.listen.port }, (info) => resolve(info));
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new GuardError('config_invalid', `${config.source}: cannot listen on ${config.listen.host}:${config.listen.port}: ${e.code ?? e.message}`, { cause: e })),
    );
  }).catch(async (e) => {
    await broker.close();
    throw e;
  });
  // Slowloris-style clients must not hold sockets forever (Node's defaults are generous).
  const http = server! as import('node:http').Server;
  http.headersTimeout = 20_000;
  http.requestTimeout = 60_000;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    broker,
    close() {
      closing ??= (async () => {
        // Remote runs stream for as long as aws runs (`logs tail --follow`): cancel them, or closing waits on them.
        broker.stopRuns();
        await new Promise<void>((resolve) => {
          // Keep-alive sockets that go idle once their in-flight response is sent would otherwise hold close()
          // open until the keep-alive timeout: close them as they become idle.
          const sweep = setInterval(() => http.closeIdleConnections(), 50);
          // Server-sent events and long polls would hold close() open for as long as they last.
          broker.drain();
          http.close(() => {
            clearInterval(sweep);
            resolve();
          });
          http.closeIdleConnections();
        });
        await broker.close();
      })();
      return closing;
    },
  };
}
