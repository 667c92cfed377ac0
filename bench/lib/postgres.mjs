// A throwaway PostgreSQL server for benchmarks, from Debian's package (as test/helpers/postgres.ts does for the
// tests): its own data directory, a free loopback port, the unix socket inside the data directory; as root it runs
// as the `postgres` user (the server refuses root). Durability is left ON here (fsync, synchronous_commit), so the
// figures are those of a real deployment's commit path on this disk.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const BIN = process.env.GUARD_AWS_TEST_PG_BIN ?? ['17', '16', '15', '14', '13'].map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => existsSync(join(d, 'initdb')));

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** @returns {Promise<{ url: string, stop(): Promise<void> }>} */
export async function startPostgres() {
  if (!BIN) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const root = userInfo().uid === 0;
  const as = (argv) => (root ? ['runuser', ['-u', 'postgres', '--', ...argv]] : [argv[0], argv.slice(1)]);
  const dir = mkdtempSync(join(tmpdir(), 'guard-pg-bench-'));
  if (root) {
    const id = (f) => Number(spawnSync('id', [f, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const data = join(dir, 'data');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' };
  const [c, a] = as([join(BIN, 'initdb'), '-D', data, '-A', 'trust', '-U', 'guard', '-E', 'UTF8', '--locale=C']);
  const init = spawnSync(c, a, { encoding: 'utf8', env });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const [pc, pa] = as([join(BIN, 'postgres'), '-D', data, '-p', String(port), '-k', data, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200']);
  const proc = spawn(pc, pa, { stdio: 'ignore', env });
  const { openPostgresDb } = await import('../../dist/store/db.js');
  for (let i = 0; ; i++) {
    try {
      const db = await openPostgresDb({ url: `postgres://guard@127.0.0.1:${port}/postgres`, poolSize: 1, connectTimeoutMs: 1000 });
      await db.exec('CREATE DATABASE guard');
      await db.close();
      break;
    } catch (e) {
      if (i > 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: `postgres://guard@127.0.0.1:${port}/guard`,
    async stop() {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      await new Promise((resolve) => {
        proc.once('exit', resolve);
        process.kill(pid, 'SIGINT');
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
