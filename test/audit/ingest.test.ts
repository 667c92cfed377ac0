import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { generateBrokerKey } from '../../src/audit/broker-key.js';
import { ApiError } from '../../src/api/http-error.js';
import { ingestTranscript, type GrantFacts } from '../../src/audit/ingest.js';
import { logOn } from '../helpers/postgres.js';
import { maskArgv } from '../../src/masking/argv.js';
import { createTranscriptKey, signTranscript } from '../../src/transcript/sign.js';
import type { TranscriptEnvelope } from '../../src/transcript/types.js';
import { newRecorder, tempDir } from '../transcript/helpers.js';

// The broker-side checks on their own, with a real (in-memory) SQLite log and grant facts as the broker's
// store holds them: argv masked with the same function the grants route uses.
const argv = ['secretsmanager', 'create-secret', '--name', 'db', '--secret-string', 'hunter2'];
const key = createTranscriptKey();
const grant: GrantFacts = {
  id: 'grt_ingest00000000000000001',
  subject: 'alice@example.com',
  argv: maskArgv(argv),
  target: 'dev',
  decision: 'approve',
  rule: 'secrets-need-approval',
  approvalId: 'apr_1',
  transcriptKey: key.publicKey,
  createdAt: '2026-11-25T10:00:00.000Z',
  expiresAt: '2026-11-25T10:15:00.000Z',
  groups: ['developers'],
};
const deps = async () => ({ log: (await logOn(new BetterSqlite3(':memory:'), generateBrokerKey('EdDSA'))), getGrant: (id: string) => (id === grant.id ? grant : undefined) });

function transcript(over: Partial<Parameters<typeof newRecorder>[1]> = {}): TranscriptEnvelope {
  const { rec } = newRecorder(
    tempDir(),
    // The run happens within the grant's lifetime (ingest checks startedAt against it).
    { grantId: grant.id, caller: { subject: grant.subject }, target: 'dev', argv, decision: 'approve', rule: 'secrets-need-approval', approvalId: 'apr_1', clock: () => Date.parse('2026-11-25T10:01:00.000Z'), ...over },
    key,
  );
  rec.onChunk('stdout', '{"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}\n');
  return rec.finish(0);
}

async function refusal(env: unknown, given?: Awaited<ReturnType<typeof deps>>): Promise<string> {
  const d = given ?? (await deps());
  try {
    await ingestTranscript(env, { subject: 'alice@example.com' }, d);
    return 'accepted';
  } catch (e) {
    return e instanceof ApiError ? `${e.status} ${e.code} ${e.message}` : String(e);
  }
}

describe('ingestTranscript', () => {
  it('accepts the run\'s own transcript: the unmasked argv the runner had masks to what the grant stored', async () => {
    const d = await deps();
    const r = await ingestTranscript(transcript(), { subject: 'alice@example.com' }, d);
    expect(r.status).toBe('recorded');
    expect(r.record.body).not.toContain('hunter2');
  });

  it('refuses a validly signed transcript whose call differs from the grant, naming the field', async () => {
    expect(await refusal(transcript({ argv: ['secretsmanager', 'create-secret', '--name', 'other', '--secret-string', 'x'] }))).toMatch(/^403 transcript_mismatch .*argv differs/);
    expect(await refusal(transcript({ target: 'prod' }))).toMatch(/^403 transcript_mismatch .*target differs/);
    expect(await refusal(transcript({ approvalId: null }))).toMatch(/^403 transcript_mismatch .*approvalId differs/);
    // Groups or a name the broker never verified for this grant.
    expect(await refusal(transcript({ caller: { subject: grant.subject, groups: ['approvers', 'admins'] } }))).toMatch(/^403 transcript_mismatch .*caller groups differs/);
    // A run dated outside the grant's lifetime (before it was issued, or after its session expired).
    expect(await refusal(transcript({ clock: () => Date.parse('2026-11-25T09:00:00.000Z') }))).toMatch(/^403 transcript_mismatch .*outside grant/);
    expect(await refusal(transcript({ clock: () => Date.parse('2026-11-25T11:00:00.000Z') }))).toMatch(/^403 transcript_mismatch .*outside grant/);
    expect(await refusal(transcript({ decision: 'allow' }))).toMatch(/^403 transcript_mismatch .*decision differs/);
    expect(await refusal(transcript({ caller: { subject: 'mallory' } }))).toMatch(/^403 transcript_mismatch .*caller differs/);
  });

  it('refuses malformed envelopes with the offending field, before any lookup', async () => {
    const good = transcript();
    expect(await refusal({ ...good, extra: 1 })).toMatch(/^400 bad_request/);
    expect(await refusal({ ...good, transcript: { ...good.transcript, chunks: [{ t: -1, s: 'o', d: '' }] } })).toMatch(/^400 bad_request transcript: transcript\.chunks\.0\.t/);
    expect(await refusal({ ...good, transcript: { ...good.transcript, status: 'done' } })).toMatch(/^400 bad_request .*status/);
    const resigned = signTranscript({ ...good.transcript, outputBytes: 1 }, createTranscriptKey().privateKey);
    expect(await refusal(resigned)).toMatch(/^403 transcript_signature_invalid/);
  });
});
