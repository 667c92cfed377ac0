import type { IoHost } from '../io/host.js';
import { loadBrokerConfig } from './config.js';
import { startBroker, type RunningBroker } from './server.js';
import { jsonLineLog } from './log.js';
import { assembleBroker, type AssembleOptions } from './assemble.js';

export interface RunBrokerOptions extends AssembleOptions {
  /** Override the config's listen port (0 = any free port). */
  port?: number;
  host?: string;
  /** Resolves when the broker should stop; default: the first SIGTERM or SIGINT. */
  until?: Promise<unknown>;
  /** Called once listening (tests learn the URL). */
  onListening?: (b: RunningBroker) => void;
}

function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(s);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/**
 * `guard-aws broker --config FILE`: loads the config, starts the broker, prints where it listens (stderr), and on
 * SIGTERM/SIGINT stops accepting connections, finishes in-flight requests and closes the store.
 */
export async function runBroker(configPath: string, io: IoHost, options: RunBrokerOptions = {}): Promise<void> {
  const loaded = loadBrokerConfig(configPath);
  const config = {
    ...loaded,
    listen: { host: options.host ?? loaded.listen.host, port: options.port ?? loaded.listen.port },
  };
  const until = options.until ?? firstSignal();
  // The complete broker: grants plus the approval flow and the transcript/audit routes (src/broker/assemble.ts).
  const deps = await assembleBroker(config, {
    ...options,
    overrides: { log: jsonLineLog((l) => process.stderr.write(l)), ...options.overrides },
  });
  const running = await startBroker(config, deps);
  io.info(`guard-aws broker listening on ${running.url}`);
  options.onListening?.(running);
  await until;
  io.info('guard-aws broker: shutting down');
  await running.close();
}
