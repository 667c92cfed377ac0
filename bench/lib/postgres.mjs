// A throwaway PostgreSQL server for benchmarks, from Debian's package (as test/helpers/postgres.ts does for tests):
// a fresh data directory, a free loopback port, trust authentication on loopback only, durability off (a bench
// measures guard-aws, not the disk). As root it runs as the `postgres` user (PostgreSQL refuses to run as root).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export function pgBin() {
  for (const v of ['17', '16', '15', '14', '13']) {
    const d = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb'))) return d;
  }
  return undefined;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** @returns {Promise<{ url: string, stop(): Promise<void> }>} */
export async function startBenchPostgres() {
  const bin = pgBin();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const asRoot = userInfo().uid === 0;
  const as = (argv) => (asRoot ? ['runuser', ['-u', 'postgres', '--', ...argv]] : [argv[0], argv.slice(1)]);
  const dir = mkdtempSync(join(tmpdir(), 'guard-bench-pg-'));
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' };
  const [c0, a0] = as([join(bin, 'initdb'), '-D', data, '-A', 'trust', '-U', 'guard', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(c0, a0, { encoding: 'utf8', env });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const [c, a] = as([
    join(bin, 'postgres'), '-D', data, '-p', String(port), '-k', data,
    '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200',
  ]);
  const proc = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  proc.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const psql = join(bin, 'psql');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited: ${log}`);
    const r = spawnSync(psql, ['-h', '127.0.0.1', '-p', String(port), '-U', 'guard', '-d', 'postgres', '-c', 'SELECT 1'], { encoding: 'utf8', env });
    if (r.status === 0) break;
    if (Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
  const mk = spawnSync(psql, ['-h', '127.0.0.1', '-p', String(port), '-U', 'guard', '-d', 'postgres', '-c', 'CREATE DATABASE guard'], { encoding: 'utf8', env });
  if (mk.status !== 0) throw new Error(`CREATE DATABASE failed: ${mk.stderr}`);
  return {
    url: `postgres://guard@127.0.0.1:${port}/guard`,
    /** A new empty database (each configuration of a bench starts from nothing). */
    fresh(name) {
      const r = spawnSync(psql, ['-h', '127.0.0.1', '-p', String(port), '-U', 'guard', '-d', 'postgres', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8', env });
      if (r.status !== 0) throw new Error(`CREATE DATABASE ${name} failed: ${r.stderr}`);
      return `postgres://guard@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      if (proc.exitCode === null) {
        await new Promise((r) => {
          proc.once('exit', r);
          proc.kill('SIGINT');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
