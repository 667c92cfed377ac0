import type { KeyObject } from 'node:crypto';
import type { GrantResponse } from '../api/types.js';
import type { IoHost } from '../io/host.js';
import { TranscriptRecorder } from '../transcript/recorder.js';
import { createTranscriptKey } from '../transcript/sign.js';
import { defaultSpoolDir } from '../transcript/spool-dir.js';
import { assertSpoolWritable, flushSpool } from '../transcript/spool.js';
import { createTranscriptUploader } from '../transcript/upload.js';
import type { FetchLike } from '../api/broker-client.js';
import type { BrokerSession as ClientSession } from '../auth/broker-session.js';

/** Glue between the run path and src/transcript: one key per grant, a spooled recorder, quiet flushing. */
export const spoolFor = (env: NodeJS.ProcessEnv): string => defaultSpoolDir(env);
export const checkSpool = (spoolDir: string): void => assertSpoolWritable(spoolDir);
export const newKey = (): { publicKey: string; privateKey: KeyObject } => createTranscriptKey();

export function recorder(
  spoolDir: string,
  key: { privateKey: KeyObject },
  grant: GrantResponse,
  session: ClientSession,
  now?: () => number,
): TranscriptRecorder {
  return new TranscriptRecorder({
    grantId: grant.grantId,
    caller: grant.caller ?? { subject: session.subject ?? 'unknown', ...(session.groups ? { groups: session.groups } : {}) },
    target: grant.target,
    argv: grant.argv,
    decision: grant.decision,
    rule: grant.rule,
    approvalId: grant.approvalId ?? null,
    privateKey: key.privateKey,
    spoolDir,
    ...(now ? { clock: now } : {}),
    ...(grant.transcriptMaxBytes ? { maxOutputBytes: grant.transcriptMaxBytes } : {}),
  });
}

/**
 * Uploads what the spool holds. Never throws: a transcript that cannot be sent now stays spooled (user-only
 * files) and goes with the next run or `guard-aws audit flush`; the caller is told once.
 */
export async function flushQuietly(spoolDir: string, session: ClientSession, f: FetchLike | undefined, host: IoHost): Promise<void> {
  try {
    const r = await flushSpool({
      spoolDir,
      upload: createTranscriptUploader({ brokerUrl: session.brokerUrl, getToken: session.token, ...(f ? { fetch: f } : {}) }),
    });
    const waiting = r.pending.filter((p) => !/running|in progress|alive/i.test(p.reason));
    if (waiting.length) host.warn(`${waiting.length} transcript(s) kept in ${spoolDir} until the broker can be reached (guard-aws audit flush)`);
    for (const x of r.rejected) {
      host.warn(
        x.code === 'damaged'
          ? `${x.message}; moved to ${x.movedTo}`
          : `the broker refused transcript ${x.grantId} (${x.code}); kept in ${x.movedTo}`,
      );
    }
  } catch (e) {
    host.warn(`transcripts kept in ${spoolDir}: ${(e as Error).message}`);
  }
}
