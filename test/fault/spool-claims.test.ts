import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootId, currentProcessStamp, pidStartTime, processState, stampToken, tokenState } from '../../src/io/liveness.js';
import { ENTRY_FILES, STAGING_PREFIX } from '../../src/transcript/recorder.js';
import { CLAIM_PREFIX, REJECTED_DIR, assertSpoolWritable, flushSpool } from '../../src/transcript/spool.js';
import { newRecorder, tempDir } from '../transcript/helpers.js';

// issue 12 items 1 and 5 at the unit level: which spool entries a flush may touch, with real processes for the
// liveness checks (a pid that has exited, a pid reused with another start time).

/** The stamp of a process that has already exited. */
function deadStamp() {
  const pid = spawnSync('true').pid!;
  return { pid, host: hostname(), ...(bootId() ? { bootId: bootId() } : {}), pidStart: '1' };
}

describe('process liveness', () => {
  it('this process is alive; an exited pid is dead; a live pid with another start time is a reused pid (dead)', () => {
    expect(processState(currentProcessStamp())).toBe('alive');
    expect(processState(deadStamp())).toBe('dead');
    const me = currentProcessStamp();
    if (me.pidStart) expect(processState({ ...me, pid: process.ppid, pidStart: '1' })).toBe('dead');
    expect(processState({ ...me, bootId: 'another-boot' })).toBe(bootId() ? 'dead' : 'alive');
    expect(processState({ ...me, host: 'some-other-host' })).toBe('unknown');
    expect(tokenState(stampToken())).toBe('alive');
    expect(tokenState(stampToken(deadStamp()))).toBe('dead');
    expect(pidStartTime(process.pid)).toMatch(/^\d+$/);
  });
});

describe('flush touches only provably abandoned entries', () => {
  it("a live run's entry under construction (staging) and a live claim are left alone", async () => {
    const spool = tempDir();
    mkdirSync(join(spool, `${STAGING_PREFIX}${stampToken()}.grt_building`), { mode: 0o700 });
    mkdirSync(join(spool, `${CLAIM_PREFIX}${stampToken()}.grt_claimed`), { mode: 0o700 });
    const r = await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(r).toEqual({ uploaded: [], recovered: [], pending: [], rejected: [] });
    expect(readdirSync(spool).sort()).toEqual([`${CLAIM_PREFIX}${stampToken()}.grt_claimed`, `${STAGING_PREFIX}${stampToken()}.grt_building`].sort());
  });

  it("a dead run's staging entry without a header is removed (aws never ran); with one it is recovered as partial", async () => {
    const spool = tempDir();
    const dead = stampToken(deadStamp());
    mkdirSync(join(spool, `${STAGING_PREFIX}${dead}.grt_nohdr`), { mode: 0o700 });
    // A whole entry of a dead run, still under its staging name (killed between header and rename).
    const { rec } = newRecorder(spool, { grantId: 'grt_hdr' });
    writeFileSync(join(rec.entryDir, ENTRY_FILES.owner), JSON.stringify({ ...deadStamp(), startedAt: new Date().toISOString() }));
    renameSync(rec.entryDir, join(spool, `${STAGING_PREFIX}${dead}.grt_hdr`));
    const sent: string[] = [];
    const r = await flushSpool({ spoolDir: spool, upload: async (env) => (sent.push(`${env.transcript.grantId}:${env.transcript.status}`), 'recorded') });
    expect(sent).toEqual(['grt_hdr:partial']);
    expect(r.recovered).toEqual(['grt_hdr']);
    expect(readdirSync(spool)).toEqual([]);
  });

  it("a dead run's writability probe is removed; a live one's is not", async () => {
    const spool = tempDir();
    writeFileSync(join(spool, `.probe.${stampToken(deadStamp())}`), Buffer.alloc(1024));
    writeFileSync(join(spool, `.probe.${stampToken()}`), Buffer.alloc(1024));
    await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(readdirSync(spool)).toEqual([`.probe.${stampToken()}`]);
  });

  it('a claim whose flusher died is returned and sent by the next flush', async () => {
    const spool = tempDir();
    const { rec } = newRecorder(spool, { grantId: 'grt_orphan' });
    rec.finish(0);
    renameSync(rec.entryDir, join(spool, `${CLAIM_PREFIX}${stampToken(deadStamp())}.grt_orphan`));
    const r = await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(r.uploaded.map((u) => u.grantId)).toEqual(['grt_orphan']);
    expect(readdirSync(spool)).toEqual([]);
  });

  it('an entry whose owner pid now belongs to another process (another start time) is recovered, not waited on', async () => {
    const spool = tempDir();
    const { rec } = newRecorder(spool, { grantId: 'grt_reused' });
    rec.onChunk('stdout', 'x');
    const owner = JSON.parse(readFileSync(join(rec.entryDir, ENTRY_FILES.owner), 'utf8'));
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    if (!owner.pidStart) return; // no /proc here: the 12 h limit covers reuse
    writeFileSync(join(rec.entryDir, ENTRY_FILES.owner), JSON.stringify({ ...owner, pid: process.ppid }));
    const r = await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(r.recovered).toEqual(['grt_reused']);
  });

  it('two flushes at once send each finished transcript exactly once', async () => {
    const spool = tempDir();
    for (let i = 0; i < 20; i++) newRecorder(spool, { grantId: `grt_par${i}` }).rec.finish(0);
    const sent: string[] = [];
    const upload = async (env: { transcript: { grantId: string } }) => {
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      sent.push(env.transcript.grantId);
      return 'recorded' as const;
    };
    await Promise.all([flushSpool({ spoolDir: spool, upload }), flushSpool({ spoolDir: spool, upload }), flushSpool({ spoolDir: spool, upload })]);
    expect(sent.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `grt_par${i}`).sort());
    expect(readdirSync(spool)).toEqual([]);
  });

  it('damaged entries (torn envelope, torn header of a dead run, a foreign envelope) go to rejected/ with the reason; the rest flows', async () => {
    const spool = tempDir();
    mkdirSync(join(spool, 'grt_torn'), { mode: 0o700 });
    writeFileSync(join(spool, 'grt_torn', ENTRY_FILES.envelope), '{"transcript":{"grantId":"grt_to');
    const { rec } = newRecorder(spool, { grantId: 'grt_badhdr' });
    writeFileSync(join(rec.entryDir, ENTRY_FILES.owner), JSON.stringify({ ...deadStamp(), startedAt: new Date().toISOString() }));
    writeFileSync(join(rec.entryDir, ENTRY_FILES.header), '{"v":1,');
    const other = newRecorder(spool, { grantId: 'grt_other' }).rec;
    other.finish(0);
    mkdirSync(join(spool, 'grt_swapped'), { mode: 0o700 });
    writeFileSync(join(spool, 'grt_swapped', ENTRY_FILES.envelope), readFileSync(join(other.entryDir, ENTRY_FILES.envelope)));
    newRecorder(spool, { grantId: 'grt_fine' }).rec.finish(0);
    const r = await flushSpool({ spoolDir: spool, upload: async () => 'recorded' });
    expect(r.uploaded.map((u) => u.grantId).sort()).toEqual(['grt_fine', 'grt_other']);
    expect(r.rejected.map((x) => [x.grantId, x.code]).sort()).toEqual([
      ['grt_badhdr', 'damaged'],
      ['grt_swapped', 'damaged'],
      ['grt_torn', 'damaged'],
    ]);
    const torn = r.rejected.find((x) => x.grantId === 'grt_torn')!;
    expect(torn.message).toMatch(/envelope\.json is not valid JSON/);
    expect(JSON.parse(readFileSync(join(torn.movedTo, 'rejected.json'), 'utf8'))).toMatchObject({ grantId: 'grt_torn', code: 'damaged' });
    expect(readdirSync(spool)).toEqual([REJECTED_DIR]);
    // Nothing left to complain about next time.
    expect(await flushSpool({ spoolDir: spool, upload: async () => 'recorded' })).toEqual({ uploaded: [], recovered: [], pending: [], rejected: [] });
  });

  it('assertSpoolWritable leaves nothing behind and refuses what cannot hold a transcript', () => {
    const spool = join(tempDir(), 'spool');
    assertSpoolWritable(spool);
    expect(existsSync(spool)).toBe(true);
    expect(readdirSync(spool)).toEqual([]);
    // A path under a regular file cannot be a spool: named, exit 74.
    const file = join(tempDir(), 'file');
    writeFileSync(file, 'x');
    let e: unknown;
    try {
      assertSpoolWritable(join(file, 'spool'));
    } catch (x) {
      e = x;
    }
    expect((e as { code?: string }).code).toBe('local_io');
    expect((e as Error).message).toContain(join(file, 'spool'));
  });
});
