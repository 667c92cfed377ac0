#!/usr/bin/env node
// One broker against three, on one PostgreSQL: grants per second and audit appends (transcript uploads) per second
// with 48 concurrent callers spread round-robin over the brokers, in one run, as ratios (three ÷ one). Each
// configuration gets a fresh database. Everything real on loopback: broker processes of the built CLI
// (`guard-aws broker`), Debian's PostgreSQL, moto_server as STS, ES256 tokens against a JWKS served here.
//
// On a machine with fewer cores than brokers the ratio says what the database serialisation costs, not how far
// brokers scale: three brokers share the same cores (the figure is printed with the core count).
// PostgreSQL runs with its durability on (bench/lib/postgres.mjs), as a deployment would.
// Usage: npm run build && npm run bench -- ha        (HA_BENCH_N: operations per configuration, default 600)
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Agent, request } from 'node:http';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dist, root } from './lib/core.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { report } from './lib/report.mjs';

const N = Number(process.env.HA_BENCH_N ?? 600);
const CONCURRENCY = 48;
const ROUNDS = 2;
const HARD_LIMIT_MS = 600_000;
const hardStop = setTimeout(() => {
  console.error('ha bench: hard time limit reached');
  process.exit(2);
}, HARD_LIMIT_MS);
hardStop.unref();

async function main() {
  if (!process.env.GUARD_AWS_TEST_PG_BIN && !['17', '16', '15', '14', '13'].some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))) {
    console.log('ha bench: PostgreSQL is not installed; skipped');
    report({ name: 'ha', measures: 'grants/s and appends/s, 3 brokers ÷ 1 broker on PostgreSQL', figure: 'skipped (no PostgreSQL)', baseline: '—', target: '—', met: null });
    return;
  }
  const { SignJWT, exportJWK, generateKeyPair } = await import('jose');
  const { startMotoServer } = await dist('dev/moto.js');
  const { loadOrCreateBrokerKey, recordKeyInHistory, historyPath } = await dist('audit/broker-key.js');
  const { createTranscriptKey } = await dist('transcript/sign.js');
  const { TranscriptRecorder } = await dist('transcript/recorder.js');

  const dir = mkdtempSync(join(tmpdir(), 'guard-ha-bench-'));
  const pg = await startPostgres();
  const { openPostgresDb } = await dist('store/db.js');
  /** A new empty database per configuration (each starts from nothing). */
  const fresh = async (name) => {
    const admin = await openPostgresDb({ url: pg.url, poolSize: 1 });
    await admin.exec(`CREATE DATABASE ${name}`);
    await admin.close();
    return pg.url.replace(/\/guard$/, `/${name}`);
  };
  const moto = await startMotoServer();
  const keys = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'h1', alg: 'ES256', use: 'sig' };
  const jwks = createServer((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  await new Promise((r) => jwks.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${jwks.address().port}`;
  const token = await new SignJWT({ groups: ['developers'] })
    .setProtectedHeader({ alg: 'ES256', kid: 'h1' })
    .setIssuer(issuer)
    .setAudience('guard-aws')
    .setSubject('bench@example.com')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(keys.privateKey);
  // One audit key for the deployment, copied to each broker (docs/deployment.md, "Keys").
  const master = join(dir, 'audit-key.pem');
  recordKeyInHistory(master, loadOrCreateBrokerKey(master));
  const procs = [];

  async function startBrokers(n, dbUrl) {
    const started = [];
    for (let i = 0; i < n; i++) {
      const home = join(dir, `${dbUrl.split('/').pop()}-${i}`);
      mkdirSync(home, { recursive: true, mode: 0o700 });
      copyFileSync(master, join(home, 'audit-key.pem'));
      copyFileSync(historyPath(master), historyPath(join(home, 'audit-key.pem')));
      const cfg = join(home, 'broker.yaml');
      writeFileSync(
        cfg,
        `listen: { host: 127.0.0.1, port: 0 }
issuer: ${issuer}
audience: guard-aws
clientId: guard-aws-cli
jwksUri: ${issuer}/jwks
algorithms: [ES256]
policies: [${join(root, 'policies/default.yaml')}]
storage: { postgres: { url: "${dbUrl}", poolSize: 10 }, auditKeyFile: ${join(home, 'audit-key.pem')} }
transcripts: { store: { type: file, dir: ${join(dir, `${dbUrl.split('/').pop()}-bodies`)} } }
execution: { people: local, workloads: local }
targets:
  - { name: bench, roleArn: "arn:aws:iam::123456789012:role/guard-bench", region: us-east-1, endpoint: "${moto.endpoint}", default: true }
`,
      );
      const child = spawn(process.execPath, [join(root, 'bin/guard-aws.js'), 'broker', '--config', cfg], {
        env: { PATH: process.env.PATH, HOME: home, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      procs.push(child);
      // Started one after the other: the first migrates the fresh database.
      started.push(
        await new Promise((resolve, reject) => {
          let err = '';
          const t = setTimeout(() => reject(new Error(`broker did not start: ${err}`)), 30_000);
          child.stderr.on('data', (b) => {
            err += b;
            const m = /listening on (http:\/\/\S+)/.exec(err);
            if (m) {
              clearTimeout(t);
              resolve({ url: m[1], child });
            }
          });
          child.once('exit', (code) => reject(new Error(`broker exited ${code}: ${err}`)));
        }),
      );
    }
    return started;
  }

  let agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const post = (base, path, body) =>
    new Promise((resolve, reject) => {
      const u = new URL(path, base);
      const text = JSON.stringify(body);
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), authorization: `Bearer ${token}` } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const out = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200 || res.statusCode === 201) resolve(JSON.parse(out));
            else reject(new Error(`${path}: ${res.statusCode} ${out.slice(0, 200)}`));
          });
        },
      );
      req.on('error', reject);
      req.end(text);
    });

  const put = (base, { env, bodyFile }) =>
    new Promise((resolve, reject) => {
      const b = env.transcript.body;
      const u = new URL(`/v1/transcripts/${env.transcript.grantId}/body?sha256=${b.sha256}&size=${b.size}&offset=0`, base);
      const bytes = readFileSync(bodyFile);
      const req = request(
        { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: 'PUT', agent, headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length, authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`body upload: ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(bytes);
    });

  async function timed(n, task) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) await task(next++);
      }),
    );
    return n / ((performance.now() - t0) / 1000);
  }

  const spool = join(dir, 'spool');
  mkdirSync(spool, { recursive: true });
  async function measure(n, round) {
    agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const db = await fresh(`bench_${n}_${round}`);
    const brokers = await startBrokers(n, db);
    const at = (i) => brokers[i % brokers.length].url;
    // Warm-up: token verification caches, connections, STS.
    await timed(60, (i) => post(at(i), '/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: createTranscriptKey().publicKey }));
    const granted = new Array(N);
    const grantsPerSec = await timed(N, async (i) => {
      const key = createTranscriptKey();
      granted[i] = { g: await post(at(i), '/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: key.publicKey }), key };
    });
    const envelopes = granted.map(({ g, key }) => {
      const rec = new TranscriptRecorder({ grantId: g.grantId, caller: g.caller, target: g.target, argv: g.argv, decision: g.decision, rule: g.rule, approvalId: null, privateKey: key.privateKey, spoolDir: spool });
      rec.onChunk('stdout', '{"Account": "123456789012"}\n');
      const env = rec.finish(0);
      return { env, bodyFile: join(rec.entryDir, 'body.bin') };
    });
    // The bodies are staged first (PUT …/body, as a client does before its transcript), on the broker that then
    // takes the transcript: what is timed is the append path (re-hash of the staged body, store, chain).
    await timed(N, (i) => put(at(i + 1), envelopes[i]));
    // Fresh connections: the broker closes keep-alive sockets idle for 5 s, and making the envelopes may take longer.
    agent.destroy();
    agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const appendsPerSec = await timed(N, (i) => post(at(i + 1), '/v1/transcripts', envelopes[i].env));
    // Idle keep-alive connections would hold a graceful shutdown open: closed first, and SIGKILL after 5 s.
    agent.destroy();
    for (const b of brokers) {
      await new Promise((r) => {
        if (b.child.exitCode !== null) return r();
        const t = setTimeout(() => b.child.kill('SIGKILL'), 5000);
        b.child.once('exit', () => {
          clearTimeout(t);
          r();
        });
        b.child.kill('SIGTERM');
      });
    }
    return { grantsPerSec, appendsPerSec };
  }

  try {
    // Alternating rounds (1, 3, 1, 3), the better of each: a busy moment on a shared machine hits both alike.
    const ones = [];
    const threes = [];
    for (let r = 0; r < ROUNDS; r++) {
      ones.push(await measure(1, r));
      threes.push(await measure(3, r));
    }
    const best = (xs) => ({ grantsPerSec: Math.max(...xs.map((x) => x.grantsPerSec)), appendsPerSec: Math.max(...xs.map((x) => x.appendsPerSec)) });
    const one = best(ones);
    const three = best(threes);
    const g = three.grantsPerSec / one.grantsPerSec;
    const a = three.appendsPerSec / one.appendsPerSec;
    console.log(`cores: ${os.cpus().length}; ${N} operations per configuration and round, ${CONCURRENCY} concurrent callers, ${ROUNDS} alternating rounds (best of each)`);
    console.log(`grants/s:  1 broker ${one.grantsPerSec.toFixed(0)}, 3 brokers ${three.grantsPerSec.toFixed(0)}  (×${g.toFixed(2)})`);
    console.log(`appends/s: 1 broker ${one.appendsPerSec.toFixed(0)}, 3 brokers ${three.appendsPerSec.toFixed(0)}  (×${a.toFixed(2)})`);
    report({
      name: 'ha',
      measures: `grants/s and audit appends/s on PostgreSQL, 3 brokers ÷ 1 broker (${os.cpus().length} cores shared by all)`,
      figure: `grants ×${g.toFixed(2)} (${three.grantsPerSec.toFixed(0)}/s), appends ×${a.toFixed(2)} (${three.appendsPerSec.toFixed(0)}/s)`,
      baseline: `1 broker: ${one.grantsPerSec.toFixed(0)} grants/s, ${one.appendsPerSec.toFixed(0)} appends/s`,
      target: 'none (informational: brokers are for availability; on a machine with fewer cores than brokers they share the CPU)',
      met: null,
    });
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    jwks.close();
    await moto.stop();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`ha bench: ${e?.stack ?? e}`);
    process.exit(1);
  },
);
