import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantResponse } from '../../src/api/types.js';
import { auditRoutes } from '../../src/broker/routes/audit.js';
import { TranscriptRecorder } from '../../src/transcript/recorder.js';
import { createTranscriptKey } from '../../src/transcript/sign.js';
import { startBrokerEnv, type BrokerEnvironment } from '../broker/helpers/broker-env.js';
import { tempDir } from '../transcript/helpers.js';

// `node bin/guard-aws.js audit …` as a user runs it (needs dist/: `npx tsc -p tsconfig.json`), against the real
// broker over HTTP with a real SQLite file; tokens come in through GUARD_AWS_TOKEN as a CI job's would.
const repoRoot = resolve(__dirname, '../..');
let env: BrokerEnvironment;
const stateDir = tempDir('guard-state-');
const module = auditRoutes();
const grants: { g: GrantResponse; out: Buffer }[] = [];

function cli(args: string[], token: string, extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [join(repoRoot, 'bin/guard-aws.js'), ...args], {
      env: { PATH: process.env.PATH!, HOME: stateDir, GUARD_AWS_BROKER: env.broker.url, GUARD_AWS_TOKEN: token, GUARD_AWS_STATE_DIR: stateDir, CI: '1', ...extraEnv },
    });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('close', (code) => res({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

beforeAll(async () => {
  if (!existsSync(join(repoRoot, 'dist/cli/commands/audit.js'))) throw new Error('build dist first: npx tsc -p tsconfig.json');
  env = await startBrokerEnv({ routes: [module] });
  // Three runs by alice, spooled locally; `audit flush` sends them.
  for (let i = 0; i < 3; i++) {
    const key = createTranscriptKey();
    const res = await env.post('/v1/grants', { argv: ['sts', 'get-caller-identity'], transcriptKey: key.publicKey }, await env.token({ sub: 'alice@example.com', groups: ['developers'] }));
    const g = (await res.json()) as GrantResponse;
    const rec = new TranscriptRecorder({ grantId: g.grantId, caller: g.caller!, target: g.target, argv: g.argv, decision: g.decision, rule: g.rule, privateKey: key.privateKey, spoolDir: join(stateDir, 'spool') });
    const out = Buffer.from(`{\n    "UserId": "AROA${i}",\n    "Account": "123456789012"\n}\n`);
    rec.onChunk('stdout', out.subarray(0, 10));
    rec.onChunk('stderr', `note ${i}\n`);
    rec.onChunk('stdout', out.subarray(10));
    rec.finish(0);
    grants.push({ g, out });
  }
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

const alice = () => env.token({ sub: 'alice@example.com', groups: ['developers'] });
const auditor = () => env.token({ sub: 'carol@example.com', groups: ['auditors'] });

describe('guard-aws audit (CLI, end to end)', () => {
  it('flush sends the spooled transcripts, then there is nothing left', async () => {
    const r = await cli(['audit', 'flush', '--json'], await alice());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString()).uploaded).toHaveLength(3);
    const again = await cli(['audit', 'flush'], await alice());
    expect(again.stdout.toString()).toMatch(/^0 transcript\(s\) sent/);
  });

  it('list and show work for an auditor; a non-auditor gets exit 77', async () => {
    const r = await cli(['audit', 'list', '--user', 'alice@example.com', '--json'], await auditor());
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout.toString()) as { grantId: string }[];
    expect(rows.map((x) => x.grantId).sort()).toEqual(grants.map((x) => x.g.grantId).sort());
    const human = await cli(['audit', 'list', '--since', '1h'], await auditor());
    expect(human.stdout.toString()).toContain('aws sts get-caller-identity');
    const show = await cli(['audit', 'show', grants[0]!.g.grantId], await auditor());
    expect(show.stdout.toString()).toMatch(/outcome: +complete, exit 0/);
    const denied = await cli(['audit', 'list'], await alice());
    expect(denied.code).toBe(77);
    expect(denied.stderr).toMatch(/auditors group/);
  });

  it('replay writes back exactly the recorded bytes to the same streams', async () => {
    const r = await cli(['audit', 'replay', grants[1]!.g.grantId, '--speed', 'max'], await auditor());
    expect(r.code).toBe(0);
    expect(r.stdout.equals(grants[1]!.out)).toBe(true);
    expect(r.stderr).toBe('note 1\n');
  });

  it('verify passes, export verifies offline with the key from GET /v1/keys, and an edited export fails naming the record', async () => {
    expect((await cli(['audit', 'verify'], await auditor())).stdout.toString()).toMatch(/^audit chain ok: 3 record\(s\)/);
    const exp = await cli(['audit', 'export'], await auditor());
    expect(exp.code).toBe(0);
    const dir = tempDir();
    const file = join(dir, 'audit.jsonl');
    const keyFile = join(dir, 'broker.pub');
    writeFileSync(file, exp.stdout);
    writeFileSync(keyFile, Buffer.from(await (await fetch(`${env.broker.url}/v1/keys`)).arrayBuffer()));
    const ok = await cli(['audit', 'verify', '--file', file, '--key', keyFile], 'unused');
    expect([ok.code, ok.stdout.toString()]).toEqual([0, expect.stringMatching(/audit chain ok: 3 record/)]);

    const lines = exp.stdout.toString().split('\n');
    const second = JSON.parse(lines[2]!) as { id: string; body: string };
    lines[2] = lines[2]!.replace('\\"exitCode\\":0', '\\"exitCode\\":1');
    expect(lines[2]).not.toBe(JSON.stringify(second));
    writeFileSync(file, lines.join('\n'));
    const bad = await cli(['audit', 'verify', '--file', file, '--key', keyFile, '--json'], 'unused');
    expect(bad.code).toBe(65);
    expect(JSON.parse(bad.stdout.toString()).firstBroken).toMatchObject({ seq: 2, id: second.id });
  });

  it('verify at the broker exits 65 and names the record after one byte of a stored record changed', async () => {
    const victim = (await module.service!.log.getByGrant(grants[2]!.g.grantId))!;
    const db = new BetterSqlite3(env.dbPath);
    db.exec('DROP TRIGGER audit_log_no_update');
    // One byte: the "0" of the recorded exit code becomes "1".
    const changed = victim.body.replace('"exitCode":0', '"exitCode":1');
    expect(changed.length).toBe(victim.body.length);
    db.prepare('UPDATE audit_log SET body = ? WHERE seq = ?').run(changed, victim.seq);
    db.close();
    const r = await cli(['audit', 'verify'], await auditor());
    expect(r.code).toBe(65);
    expect(r.stderr).toContain(`audit chain broken at record seq ${victim.seq} (id ${victim.id}): content does not match its hash`);
  });
});
