import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.js';

/**
 * A real moto_server (AWS API emulator) on a free loopback port. Used as "AWS" by the end-to-end tests:
 * the real `aws` CLI and the broker's STS client are pointed at `endpoint`.
 */
export interface Moto {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  /** Requests moto has received since start (method + path + target), from moto's own request log. */
  requests(): string[];
}

export async function startMoto(): Promise<Moto> {
  const port = await freePort();
  const log: string[] = [];
  const child: ChildProcess = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' },
  });
  // A pipe delivers chunks, not lines: under load one chunk ends mid-line and the next carries the rest, so each
  // stream keeps its unfinished line until the newline arrives (split per chunk, a request's line was lost).
  const lines = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) if (/"(GET|POST|PUT|DELETE|HEAD|PATCH) /.test(line)) log.push(line);
    });
  };
  lines(child.stdout!);
  lines(child.stderr!);
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${endpoint}/moto-api/`);
      if (r.status < 500) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('moto_server did not start within 30 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log.length = 0;
  return {
    endpoint,
    port,
    requests: () => [...log],
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
