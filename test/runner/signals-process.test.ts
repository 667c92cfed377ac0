import { afterAll, beforeAll, expect, test } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Ctrl-C for real: SIGINT sent to a process running the runner (from dist/) ends the aws it started. */

const repo = resolve(__dirname, '..', '..');
let hang: Server;
let hangUrl: string;
const sockets: Socket[] = [];
let onRequest: (() => void) | null = null;

beforeAll(async () => {
  spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json')], { cwd: repo });
  hang = createServer(() => onRequest?.());
  hang.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  hangUrl = `http://127.0.0.1:${(hang.address() as { port: number }).port}`;
}, 120_000);

afterAll(() => {
  hang.closeAllConnections();
  hang.close();
});

test.each([
  ['SIGINT', 130, false],
  ['SIGTERM', 143, false],
  ['SIGHUP', 129, false],
  // A terminal's Ctrl-C reaches the whole foreground process group: aws gets it twice (directly and forwarded).
  ['SIGINT', 130, true],
] as const)('%s to guard-aws (whole process group: %s) ends aws, returns its exit code and removes the private HOME', async (sig, code, group) => {
  const tmpRoot = mkdtempSync(join(tmpdir(), 'guard-aws-sig-'));
  const requested = new Promise<void>((r) => (onRequest = r));
  const opts = {
    argv: ['sts', 'get-caller-identity', '--cli-read-timeout', '50'],
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing', sessionToken: 'FwoGZXIvYXdzEsignaltest' },
    endpoint: hangUrl,
    tmpRoot,
    cacheDir: mkdtempSync(join(tmpdir(), 'guard-aws-cache-')),
  };
  const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'run-driver.mjs'), JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  await requested;
  const awsSocket = sockets[sockets.length - 1]!;
  const awsGone = new Promise<void>((r) => (awsSocket.destroyed ? r() : awsSocket.once('close', () => r())));
  if (group) process.kill(-child.pid!, sig);
  else child.kill(sig);
  const exitCode = await exited;
  await awsGone; // the aws process's connection closed: it is gone, not orphaned
  expect(exitCode, stderr).toBe(code);
  expect(stderr).not.toMatch(/Traceback/);
  expect(readdirSync(tmpRoot)).toEqual([]);
}, 60_000);
