import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { GuardError } from '../errors.js';

/** A moto_server child for `guard-aws dev --start-moto`: a local AWS API emulator on a free loopback port. */
export interface MotoChild {
  endpoint: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export async function startMotoServer(bin = 'moto_server', timeoutMs = 30_000): Promise<MotoChild> {
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  } catch (e) {
    throw new GuardError('aws_not_found', `cannot start ${bin}: ${(e as Error).message}`, { cause: e });
  }
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (e) => reject(new GuardError('aws_not_found', `cannot start ${bin}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    child.once('exit', (code) => reject(new GuardError('aws_not_found', `${bin} exited with ${code} before it was ready`)));
  });
  failed.catch(() => undefined);
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await Promise.race([
      fetch(`${endpoint}/moto-api/`).then((r) => r.status < 500, () => false),
      failed,
    ]);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new GuardError('aws_not_found', `${bin} did not answer within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
