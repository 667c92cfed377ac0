import { closeSync, createReadStream, existsSync, fsyncSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { ApiError } from '../../api/http-error.js';
import { holdStaging } from './staging.js';
import { checkDigest, hashStream, type BodyStore } from './store.js';

/** Bytes one upload request may carry (a chunk); the client sends 4 MiB. */
export const MAX_UPLOAD_CHUNK = 8 * 1024 * 1024;

/** What a transcript names of its body: digest and size. */
export interface BodyClaim {
  sha256: string;
  size: number;
}

interface Meta extends BodyClaim {
  subject: string;
}

/**
 * A caller's resumable, chunked upload of one transcript body (PUT /v1/transcripts/{grant}/body): staged on disk
 * next to the body store (never in the database), one file per grant, each chunk appended at the offset the broker
 * acknowledged before and fsynced before it is acknowledged — so after a broken connection, a killed client or a
 * broker restart the upload resumes from the broker's offset (GET …/body). The body enters the store only when the
 * transcript referencing it is posted and its SHA-256 and size are those the signed transcript names (commit).
 */
export class BodyUploads {
  private readonly busy = new Set<string>();

  constructor(
    readonly store: BodyStore,
    /** Largest body accepted (transcripts.maxBodyBytes plus framing: the body keeps at most that much output). */
    private readonly maxBytes: number,
    /** The body this grant's transcript record binds, if it has one already (a client retrying after a lost answer). */
    private readonly recorded: (grantId: string) => Promise<BodyClaim | undefined> = async () => undefined,
  ) {}

  /**
   * Whether the grant's own record binds exactly this body already. Only the grant's own record counts, never "the
   * store has a body with this digest": that would tell any caller whether someone's output is a guessed one, and let
   * a transcript name a body its caller never had.
   */
  private async done(grantId: string, c: BodyClaim): Promise<boolean> {
    const r = await this.recorded(grantId);
    return r !== undefined && r.sha256 === c.sha256 && r.size === c.size;
  }

  private paths(grantId: string) {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(grantId)) throw new ApiError('bad_request', 'invalid grant id in the path');
    const base = join(this.store.stagingDir, `upload-${grantId}`);
    return { data: base, meta: `${base}.json` };
  }

  private claim(q: { sha256?: string | undefined; size?: string | undefined }): BodyClaim {
    const sha256 = q.sha256 ?? '';
    const size = Number(q.size);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new ApiError('bad_request', 'invalid query parameter sha256: 64 lowercase hex characters');
    if (!Number.isSafeInteger(size) || size < 0) throw new ApiError('bad_request', 'invalid query parameter size: a byte count');
    if (size > this.maxBytes) {
      throw new ApiError('payload_too_large', `the transcript body is ${size} bytes, more than the broker's limit of ${this.maxBytes} (transcripts.maxBodyBytes)`);
    }
    return { sha256, size };
  }

  private readMeta(path: string): Meta | undefined {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Meta;
    } catch {
      return undefined;
    }
  }

  /** GET …/body?sha256=&size=: how many bytes the broker has (all of them when the store holds the body already). */
  async offset(grantId: string, subject: string, q: { sha256?: string; size?: string }): Promise<number> {
    const c = this.claim(q);
    const p = this.paths(grantId);
    if (await this.done(grantId, c)) return c.size;
    const meta = this.readMeta(p.meta);
    if (!meta || meta.subject !== subject || meta.sha256 !== c.sha256 || meta.size !== c.size || !existsSync(p.data)) return 0;
    return statSync(p.data).size;
  }

  /** PUT …/body?sha256=&size=&offset=: appends one chunk at `offset`; answers the new offset. */
  async append(grantId: string, subject: string, q: { sha256?: string; size?: string; offset?: string }, body: Readable): Promise<number> {
    const c = this.claim(q);
    const p = this.paths(grantId);
    const at = Number(q.offset);
    if (!Number.isSafeInteger(at) || at < 0) throw new ApiError('bad_request', 'invalid query parameter offset: a byte count');
    // Recorded already (a retry after the record was made): nothing to stage.
    if (await this.done(grantId, c)) return c.size;
    if (this.busy.has(grantId)) throw new ApiError('body_offset', `another upload of grant ${grantId}'s transcript body is in progress`, { offset: 0 });
    this.busy.add(grantId);
    const release = holdStaging(p.data);
    try {
      let meta = this.readMeta(p.meta);
      if (meta && meta.subject !== subject) throw new ApiError('forbidden', `grant ${grantId} belongs to another caller`);
      if (meta && (meta.sha256 !== c.sha256 || meta.size !== c.size)) {
        // A different body for the same grant: only a fresh start may replace an upload that never completed.
        if (at !== 0) throw new ApiError('transcript_conflict', `grant ${grantId} has an upload of a different transcript body in progress`);
        rmSync(p.data, { force: true });
        meta = undefined;
      }
      if (!meta) {
        // A fresh start: whatever data is there without a claim (its claim swept as stale, or never written) is
        // nobody's to continue.
        rmSync(p.data, { force: true });
        meta = { ...c, subject };
        writeFileSync(p.meta, JSON.stringify(meta), { mode: 0o600 });
      }
      const have = existsSync(p.data) ? statSync(p.data).size : 0;
      if (at !== have) throw new ApiError('body_offset', `the broker has ${have} bytes of this body, not ${at}: continue from there`, { offset: have });
      const fd = openSync(p.data, 'a', 0o600);
      let n = 0;
      try {
        for await (const chunk of body) {
          const b = chunk as Buffer;
          n += b.length;
          if (n > MAX_UPLOAD_CHUNK) throw new ApiError('payload_too_large', `an upload chunk may carry at most ${MAX_UPLOAD_CHUNK} bytes`, {}, { headers: { Connection: 'close' } });
          if (have + n > c.size) throw new ApiError('payload_too_large', `the chunk goes past the body's declared size of ${c.size} bytes`, {}, { headers: { Connection: 'close' } });
          writeSync(fd, b);
        }
        // Acknowledged means on disk: a broker crash after the answer loses nothing the client was told it has.
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return have + n;
    } finally {
      release();
      this.busy.delete(grantId);
    }
  }

  /**
   * Called by ingest before the transcript's record is appended: the body the signed transcript names must be staged
   * complete for this grant with exactly that SHA-256 and size (re-hashed here from disk); it is then moved into the
   * store (content-addressed: the same bytes already there stay as they are). Returns where it lives.
   */
  async commit(grantId: string, subject: string, c: BodyClaim): Promise<string> {
    checkDigest(c.sha256);
    // Always from this grant's own upload, even when the store holds the same bytes already (adopt then keeps the
    // one copy): a transcript cannot name a body its caller did not send.
    const p = this.paths(grantId);
    // Held while it is re-hashed and moved into the store (a multipart upload of a large body takes a while): the
    // staging sweep (staging.ts) leaves it alone whatever its age.
    const release = holdStaging(p.data);
    try {
      return await this.commitHeld(grantId, subject, c, p);
    } finally {
      release();
    }
  }

  private async commitHeld(grantId: string, subject: string, c: BodyClaim, p: { data: string; meta: string }): Promise<string> {
    const meta = this.readMeta(p.meta);
    const have = existsSync(p.data) ? statSync(p.data).size : -1;
    if (!meta || meta.subject !== subject || meta.sha256 !== c.sha256 || have !== c.size) {
      throw new ApiError('transcript_body_missing', `transcript: the broker does not have its body (${c.size} bytes, sha256 ${c.sha256.slice(0, 16)}…) yet: upload it first (PUT /v1/transcripts/${grantId}/body)`);
    }
    const got = await hashStream(createReadStream(p.data, { highWaterMark: 1024 * 1024 }));
    if (got.sha256 !== c.sha256 || got.size !== c.size) {
      this.discard(grantId);
      throw new ApiError('transcript_mismatch', `transcript: the uploaded body's SHA-256 (${got.sha256.slice(0, 16)}…) is not the one the signed transcript names`);
    }
    await this.store.adopt(p.data, c.sha256, c.size);
    rmSync(p.meta, { force: true });
    return this.store.location(c.sha256);
  }

  private discard(grantId: string): void {
    const p = this.paths(grantId);
    rmSync(p.data, { force: true });
    rmSync(p.meta, { force: true });
  }
}
