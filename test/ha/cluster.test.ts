import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateBrokerKey, recordKeyInHistory, historyPath } from '../../src/audit/broker-key.js';
import { TranscriptRecorder } from '../../src/transcript/recorder.js';
import { createTranscriptKey, type TranscriptKey } from '../../src/transcript/sign.js';
import type { GrantResponse } from '../../src/api/types.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { startMoto, type Moto } from '../helpers/moto.js';
import { HAVE_POSTGRES, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTestIdp, type TestIdp } from '../broker/helpers/idp.js';
import { clientEnv, runCli, startBrokerProc, type BrokerProc } from './brokers.js';

// Issue 9, "Must show": THREE real broker processes (the built CLI's `guard-aws broker`) on ONE real PostgreSQL
// server (Debian's, test/helpers/postgres.ts), real moto_server as STS, ES256 tokens from a local key set. One
// stack for the whole file; the tests run in order and later ones build on what earlier ones left (the chain).
// Needs a build and PostgreSQL.

let dir: string;
let pg: TestPostgres;
let moto: Moto;
let idp: TestIdp;
const brokers: BrokerProc[] = [];
const tokens: Record<string, string> = {};
const names = ['a', 'b', 'c'];
const keyFile = (name: string) => join(dir, name, 'audit-key.pem');

function spec(name: string, port?: number) {
  return {
    name,
    dir,
    idp,
    stsEndpoint: moto.endpoint,
    storage: `{ postgres: { url: "${pg.url}", poolSize: 8, connectTimeoutMs: 1000 }, auditKeyFile: ${keyFile(name)} }`,
    ...(port ? { port } : {}),
  };
}

/** One audit key for the deployment: made once, copied (with its history) to each broker, as docs/deployment.md says. */
function deployKey(): void {
  mkdirSync(join(dir, 'keys'), { recursive: true, mode: 0o700 });
  const master = join(dir, 'keys', 'audit-key.pem');
  const key = loadOrCreateBrokerKey(master);
  recordKeyInHistory(master, key);
  for (const n of names) copyKey(master, n);
}
function copyKey(from: string, to: string): void {
  mkdirSync(join(dir, to), { recursive: true, mode: 0o700 });
  copyFileSync(from, keyFile(to));
  copyFileSync(historyPath(from), historyPath(keyFile(to)));
}

async function api(b: BrokerProc, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${b.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

async function grant(b: BrokerProc, argv: string[], o: { token?: string; approvalId?: string; target?: string } = {}) {
  const key = createTranscriptKey();
  const r = await api(b, 'POST', '/v1/grants', o.token ?? tokens.alice!, {
    argv,
    transcriptKey: key.publicKey,
    ...(o.approvalId ? { approvalId: o.approvalId } : {}),
    ...(o.target ? { target: o.target } : {}),
    ...(o.approvalId ? {} : { reason: 'ha test' }),
  });
  return { ...r, key };
}

const envelopes = new Map<string, TranscriptEnvelope>();
/** The signed transcript of a grant's run (made once per grant: an upload retried is the same envelope). */
function transcriptOf(g: GrantResponse, key: TranscriptKey): TranscriptEnvelope {
  const made = envelopes.get(g.grantId);
  if (made) return made;
  const spoolDir = join(dir, 'spool');
  mkdirSync(spoolDir, { recursive: true });
  const rec = new TranscriptRecorder({
    grantId: g.grantId,
    caller: g.caller!,
    target: g.target,
    argv: g.argv,
    decision: g.decision,
    rule: g.rule,
    approvalId: g.approvalId ?? null,
    privateKey: key.privateKey,
    spoolDir,
  });
  rec.onChunk('stdout', '{"Account": "123456789012"}\n');
  const env = rec.finish(0);
  envelopes.set(g.grantId, env);
  bodyFiles.set(g.grantId, join(rec.entryDir, 'body.bin'));
  return env;
}
const bodyFiles = new Map<string, string>();

/**
 * What a client does after a run: the body first (PUT …/body, staged beside the shared body store), then the signed
 * transcript naming it by digest, both to broker `b`.
 */
async function postTranscript(b: BrokerProc, g: GrantResponse, key: TranscriptKey): Promise<{ status: number; json: any }> {
  const env = transcriptOf(g, key);
  const body = env.transcript.body!;
  const put = await fetch(`${b.url}/v1/transcripts/${g.grantId}/body?sha256=${body.sha256}&size=${body.size}&offset=0`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${tokens.alice!}`, 'content-type': 'application/octet-stream' },
    body: readFileSync(bodyFiles.get(g.grantId)!),
  });
  // 409 body_offset: the body is already (partly) there from an earlier try; the transcript post decides.
  if (put.status !== 200 && put.status !== 409) return { status: put.status, json: await put.json().catch(() => null) };
  return api(b, 'POST', '/v1/transcripts', tokens.alice!, env);
}

/** Runs `n` tasks with `width` at a time; resolves with their results in order. */
async function pool<T>(n: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

const verifyCli = (b: BrokerProc | string) =>
  runCli(['audit', 'verify', '--json'], clientEnv(dir, typeof b === 'string' ? b : b.url, tokens.carol!, { XDG_CACHE_HOME: join(dir, 'cache-verify') }));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'guard-ha-cluster-'));
  [pg, moto, idp] = await Promise.all([startPostgres(), startMoto(), startTestIdp()]);
  deployKey();
  // All three at once: they migrate the empty database together (one wins the migration lock, the others wait).
  brokers.push(...(await Promise.all(names.map((n) => startBrokerProc(spec(n))))));
  const sign = (sub: string, groups: string[]) => idp.sign({ sub, groups }, { expiresIn: '2h' });
  tokens.alice = await sign('alice@example.com', ['developers']);
  tokens.bob = await sign('bob@example.com', ['approvers']);
  tokens.dave = await sign('dave@example.com', ['approvers', 'developers']);
  tokens.erin = await sign('erin@example.com', ['approvers']);
  tokens.carol = await sign('carol@example.com', ['auditors']);
}, 120_000);
afterAll(async () => {
  for (const b of brokers) await b.kill('SIGKILL');
  await idp?.close();
  await moto?.stop();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Skipped only without PostgreSQL's binaries; scripts/setup-system.sh installs them, so CI runs it.
describe.skipIf(!HAVE_POSTGRES)('three brokers on one PostgreSQL', () => {
  it('an approval redeemed on three brokers at once gives exactly one grant (five rounds)', async () => {
    const [a, b, c] = brokers as [BrokerProc, BrokerProc, BrokerProc];
    for (let round = 0; round < 5; round++) {
      const argv = ['s3api', 'delete-bucket', '--bucket', `e2e-ha-${round}`];
      const asked = await grant(a, argv);
      expect(asked.status, JSON.stringify(asked.json)).toBe(403);
      const id = asked.json.error.approval.id as string;
      expect((await api(b, 'POST', `/v1/approvals/${id}/approve`, tokens.bob!, {})).status).toBe(200);
      // Nine redemptions, three per broker, all in flight together.
      const tries = await Promise.all([a, b, c, a, b, c, a, b, c].map((x) => grant(x, argv, { approvalId: id })));
      const won = tries.filter((t) => t.status === 200);
      expect(won, JSON.stringify(tries.map((t) => [t.status, t.json?.error?.code]))).toHaveLength(1);
      for (const t of tries.filter((x) => x.status !== 200)) expect(t.json.error.code).toBe('approval_used');
      const seen = await api(c, 'GET', `/v1/approvals/${id}`, tokens.bob!);
      expect(seen.json.status).toBe('used');
    }
  }, 120_000);

  it('concurrent votes on different brokers: two distinct approvers approve once; a double vote and self-approval are refused', async () => {
    const [a, b, c] = brokers as [BrokerProc, BrokerProc, BrokerProc];
    // Writes to prod need two approvers (test/e2e/fixtures/e2e-policy.yaml).
    const asked = await grant(a, ['s3api', 'put-bucket-versioning', '--bucket', 'e2e-prod', '--versioning-configuration', 'Status=Enabled'], { target: 'prod' });
    expect(asked.status, JSON.stringify(asked.json)).toBe(403);
    const id = asked.json.error.approval.id as string;
    expect(asked.json.error.approval.required).toBe(2);
    const votes = await Promise.all([
      api(a, 'POST', `/v1/approvals/${id}/approve`, tokens.bob!, {}),
      api(b, 'POST', `/v1/approvals/${id}/approve`, tokens.bob!, {}),
      api(c, 'POST', `/v1/approvals/${id}/approve`, tokens.bob!, {}),
      api(b, 'POST', `/v1/approvals/${id}/approve`, tokens.erin!, {}),
    ]);
    const bobs = votes.slice(0, 3);
    expect(bobs.filter((v) => v.status === 200), JSON.stringify(bobs.map((v) => v.json))).toHaveLength(1);
    for (const v of bobs.filter((x) => x.status !== 200)) expect(['approval_duplicate', 'approval_closed']).toContain(v.json.error.code);
    expect(votes[3]!.status).toBe(200);
    const seen = (await api(c, 'GET', `/v1/approvals/${id}`, tokens.bob!)).json;
    expect(seen.status).toBe('approved');
    expect(seen.approvals.map((x: { by: string }) => x.by).sort()).toEqual(['bob@example.com', 'erin@example.com']);

    // dave asks, then votes for himself on another broker: refused, whatever broker he asks.
    const own = await grant(b, ['s3api', 'delete-bucket', '--bucket', 'e2e-ha-dave'], { token: tokens.dave! });
    const ownId = own.json.error.approval.id as string;
    for (const x of [a, c]) expect((await api(x, 'POST', `/v1/approvals/${ownId}/approve`, tokens.dave!, {})).json.error.code).toBe('self_approval');
  }, 60_000);

  it('1,000 audit appends interleaved across the three brokers: one chain, and `audit verify` holds', async () => {
    const N = 1000;
    const granted = await pool(N, 24, async (i) => {
      const g = await grant(brokers[i % 3]!, ['sts', 'get-caller-identity']);
      expect(g.status, JSON.stringify(g.json)).toBe(200);
      return { g: g.json as GrantResponse, key: g.key };
    });
    // Each transcript goes to another broker than the one that granted it, all three appending at once.
    const answers = await pool(N, 24, async (i) => {
      const { g, key } = granted[i]!;
      return postTranscript(brokers[(i + 1) % 3]!, g, key);
    });
    expect(answers.filter((r) => r.status !== 201).map((r) => r.json)).toEqual([]);
    const seqs = answers.map((r) => r.json.seq as number).sort((x, y) => x - y);
    expect(new Set(seqs).size).toBe(N); // no duplicate sequence number
    for (const b of brokers) {
      const v = await verifyCli(b);
      expect(v.status, v.stderr).toBe(0);
      expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
    }
  }, 300_000);

  it('kill -9 of one broker mid-burst: no corruption, the others keep serving, the client fails over', async () => {
    const [a, b, c] = brokers as [BrokerProc, BrokerProc, BrokerProc];
    let killed = false;
    const results = await pool(300, 24, async (i) => {
      if (i === 100 && !killed) {
        killed = true;
        await c.kill('SIGKILL');
      }
      const to = brokers[i % 3]!;
      try {
        const g = await grant(to, ['sts', 'get-caller-identity']);
        if (g.status !== 200) return { to: to.name, ok: false, why: JSON.stringify(g.json) };
        const t = await postTranscript(to, g.json, g.key);
        return { to: to.name, ok: t.status === 201, why: JSON.stringify(t.json) };
      } catch (e) {
        return { to: to.name, ok: false, why: (e as Error).message };
      }
    });
    // a and b answered everything; c only until it was killed.
    expect(results.filter((r) => r.to !== 'c' && !r.ok)).toEqual([]);
    // The client given c first goes to a (c refuses connections now).
    const run = await runCli(['sts', 'get-caller-identity'], clientEnv(dir, `${c.url},${a.url}`, tokens.alice!, { XDG_CACHE_HOME: join(dir, 'cache-kill') }));
    expect(run.status, run.stderr).toBe(0);
    const v = await verifyCli(`${c.url},${b.url}`);
    expect(v.status, v.stderr).toBe(0);
    // Back on its port for the tests after this one.
    brokers[2] = await startBrokerProc(spec('c', c.port));
  }, 180_000);

  it('PostgreSQL restarted under load: brokers fail closed meanwhile (exit 69), then reconnect by themselves', async () => {
    const [a, b] = brokers as [BrokerProc, BrokerProc, BrokerProc];
    const env = clientEnv(dir, `${a.url},${b.url}`, tokens.alice!, { XDG_CACHE_HOME: join(dir, 'cache-pg') });
    let stop = false;
    const answered: number[] = [];
    const load = (async () => {
      let i = 0;
      while (!stop) {
        const r = await grant(brokers[i++ % 3]!, ['sts', 'get-caller-identity']).catch(() => ({ status: 0 }));
        answered.push(r.status);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await pg.halt();
    const down = await runCli(['sts', 'get-caller-identity'], env);
    expect(down.status, down.stderr).toBe(69);
    const ready = await fetch(`${a.url}/readyz`);
    expect(ready.status).toBe(503);
    await pg.start();
    // Reconnected without a restart: the same processes answer again.
    let up = await runCli(['sts', 'get-caller-identity'], env);
    for (let i = 0; i < 20 && up.status !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      up = await runCli(['sts', 'get-caller-identity'], env);
    }
    expect(up.status, up.stderr).toBe(0);
    stop = true;
    await load;
    // While it was down: refusals (503), never a grant without its record.
    expect(answered.every((s) => s === 200 || s === 503)).toBe(true);
    expect(answered).toContain(503);
    const v = await verifyCli(a);
    expect(v.status, v.stderr).toBe(0);
  }, 120_000);

  it('key rotation on one broker: the others refuse to sign with the retired key until the new key reaches them', async () => {
    const [a, b] = brokers as [BrokerProc, BrokerProc, BrokerProc];
    // Restart a with --rotate-audit-key: a key_rotation record, signed by the new key, is appended.
    await a.kill('SIGTERM');
    brokers[0] = await startBrokerProc({ ...spec('a', a.port), args: ['--rotate-audit-key'] });
    const a2 = brokers[0];
    const g = await grant(b, ['sts', 'get-caller-identity']);
    // b still holds the retired key: it refuses to record (503, nothing written) …
    const refused = await postTranscript(b, g.json, g.key);
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('audit_key_retired');
    // … the rotated broker records it …
    const g2 = await grant(b, ['sts', 'get-caller-identity']);
    expect((await postTranscript(a2, g2.json, g2.key)).status).toBe(201);
    // … and once the new key file (and history) is deployed to b, b signs again, without a restart.
    copyKey(keyFile('a'), 'b');
    expect((await postTranscript(b, g.json, g.key)).status).toBe(201);
    // Both keys are listed; the chain verifies with them, and not with the old key alone.
    const keys = (await (await fetch(`${b.url}/v1/keys`)).json()) as { keys: { kid: string; current: boolean }[] };
    expect(keys.keys).toHaveLength(2);
    expect(keys.keys[0]!.current).toBe(true);
    const v = await verifyCli(b);
    expect(v.status, v.stderr + v.stdout).toBe(0);
    const exp = await runCli(['audit', 'export'], clientEnv(dir, a2.url, tokens.carol!));
    expect(exp.status, exp.stderr).toBe(0);
    writeFileSync(join(dir, 'export.jsonl'), exp.stdout);
    writeFileSync(join(dir, 'keys.json'), JSON.stringify(keys));
    const offline = await runCli(['audit', 'verify', '--file', join(dir, 'export.jsonl'), '--key', join(dir, 'keys.json')], clientEnv(dir, a2.url, tokens.carol!));
    expect(offline.status, offline.stderr).toBe(0);
    // The old key alone (a verifier not given the new one): records signed by the unlisted key are a break (65).
    writeFileSync(join(dir, 'old.json'), JSON.stringify({ keys: [keys.keys[1]] }));
    const unlisted = await runCli(['audit', 'verify', '--file', join(dir, 'export.jsonl'), '--key', join(dir, 'old.json')], clientEnv(dir, a2.url, tokens.carol!));
    expect(unlisted.status).toBe(65);
    // (With one key the verifier checks every record against it: the rotation record, signed by the new key, fails.)
    expect(unlisted.stdout + unlisted.stderr).toMatch(/broker signature does not verify|not among the keys given to verify with/);
  }, 120_000);

  it('a broker started with a key of its own cannot sign into the shared chain', async () => {
    // A fourth broker whose key file was never deployed: the log has records, so it refuses to start (exit 78).
    await expect(startBrokerProc({ ...spec('d') })).rejects.toMatchObject({ exitCode: 78 });
    // With a key file of its own (made by someone, not the deployment's key): it starts, but every append is refused.
    mkdirSync(join(dir, 'e'), { recursive: true, mode: 0o700 });
    loadOrCreateBrokerKey(keyFile('e'));
    const e = await startBrokerProc(spec('e'));
    brokers.push(e);
    const g = await grant(e, ['sts', 'get-caller-identity']);
    const r = await postTranscript(e, g.json, g.key);
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('audit_key_retired');
    const v = await verifyCli(brokers[0]!);
    expect(v.status, v.stderr).toBe(0);
  }, 60_000);
});
