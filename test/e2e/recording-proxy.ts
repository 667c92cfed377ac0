import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A pass-through HTTP proxy in front of the broker (plain node:http) that keeps every response body, so a test can
 * assert what a caller's host received: issue 7's "no broker answer ever carries credentials".
 */
export interface RecordingProxy {
  url: string;
  /** Every chunk of every response body, in order. */
  answers: Buffer[];
  close(): void;
}

export function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const t = new URL(target);
  const answers: Buffer[] = [];
  const server: Server = createServer((req, res) => {
    const up = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.on('data', (c: Buffer) => {
        answers.push(Buffer.from(c));
        if (!res.write(c)) {
          ur.pause();
          res.once('drain', () => ur.resume());
        }
      });
      ur.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answers, close: () => server.close() }),
    ),
  );
}
