import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import { kidOf, verifyHead, verifyRecordHash } from './broker-key.js';
import type { AuditHead, AuditRecord, ChainBreak, ChainResult } from './types.js';

/**
 * The fixed "previous hash" of the first record: 32 zero bytes. Like CloudTrail's first digest file (whose
 * previousDigestSignature is null), the first link points at a known constant, so a chain cannot be made to
 * start anywhere else without the first record failing.
 */
export const GENESIS_PREV_HASH = '0'.repeat(64);

/**
 * The bytes a record's hash covers: the previous hash (raw 32 bytes), the canonical JSON of the record's own
 * header fields (seq, id, kind, at, grantId, subject — so none of the indexed columns can be edited without
 * breaking the hash), a newline, and the body text exactly as stored.
 */
export function recordHash(r: Omit<AuditRecord, 'hash' | 'sig'>): string {
  const header = recordHeader(r);
  return createHash('sha256')
    .update(Buffer.from(r.prevHash, 'hex'))
    .update(header, 'utf8')
    .update('\n', 'utf8')
    .update(r.body, 'utf8')
    .digest('hex');
}

/**
 * canonicalJson({at, grantId, id, kind, seq, subject}) written out directly (keys already in RFC 8785 order):
 * this runs once per record when a whole chain is verified. Falls back to canonicalJson for anything unusual.
 */
export function recordHeader(r: Pick<AuditRecord, 'at' | 'grantId' | 'id' | 'kind' | 'seq' | 'subject'>): string {
  const str = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : undefined);
  const at = str(r.at);
  const grantId = str(r.grantId);
  const id = str(r.id);
  const kind = str(r.kind);
  const subject = str(r.subject);
  if (at === undefined || grantId === undefined || id === undefined || kind === undefined || subject === undefined || !Number.isSafeInteger(r.seq)) {
    return canonicalJson({ at: r.at, grantId: r.grantId, id: r.id, kind: r.kind, seq: r.seq, subject: r.subject });
  }
  return `{"at":${at},"grantId":${grantId},"id":${id},"kind":${kind},"seq":${r.seq},"subject":${subject}}`;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Incremental chain verifier: push records in order, read the result. Stops at the first break. The first
 * record must be seq 1 with the genesis prevHash unless `allowPartial` (an export made with --since), in
 * which case the chain is checked from wherever it starts.
 */
export class ChainVerifier {
  private count = 0;
  private last: { seq: number; hash: string } | null = null;
  private broken: ChainBreak | undefined;
  private fromGenesis = true;
  /**
   * The trusted keys, oldest first (the order they signed the log in: the broker's key history), their kids in the
   * same order, and the position of the key in force (undefined until the first record fixes it).
   */
  private readonly order: readonly KeyObject[];
  private readonly kids: readonly string[];
  private at: number | undefined;
  /**
   * The first record since the last signed one that carries no signature of its own (sig ''), and how many records
   * had verified before it. It is covered once a later signed record verifies (SECURITY.md, "The audit log").
   */
  private uncovered: { seq: number; id: string | null; count: number } | null = null;

  constructor(
    /** One key, or every trusted key oldest first (a log that went through rotations). */
    keys: KeyObject | readonly KeyObject[],
    private readonly allowPartial = false,
    /** False when signatures are checked elsewhere (verifyChainParallel's workers; one key only). */
    private readonly checkSignatures = true,
  ) {
    this.order = Array.isArray(keys) ? [...(keys as readonly KeyObject[])] : [keys as KeyObject];
    this.kids = this.order.map((k) => kidOf(k));
    this.at = this.order.length === 1 ? 0 : undefined;
  }

  /** The key in force after the records pushed so far (what the signed head and an export's trailer must verify under). */
  get keyInForce(): KeyObject | undefined {
    return this.at === undefined ? undefined : this.order[this.at];
  }

  /**
   * Checks a record's broker signature under the key in force. A log checked from the genesis record starts with
   * the oldest trusted key. A `key_rotation` record names the key that signs from there on (itself included): that
   * key must be one of the trusted keys the verifier was given, later in their order than the key in force, and the
   * record's previousKid must be the key in force — keys only move forward, so a retired key can neither sign on
   * after its rotation nor "rotate back". Only a partial chain (an export made with --since) lets its first record
   * decide which key is in force.
   */
  private signatureOk(r: AuditRecord, genesis: boolean): string | null {
    if (genesis && this.at === undefined) this.at = 0;
    if (r.kind === 'key_rotation') {
      let kid: unknown;
      let previousKid: unknown;
      try {
        ({ kid, previousKid } = JSON.parse(r.body) as { kid?: unknown; previousKid?: unknown });
      } catch {
        return 'key rotation record without a readable body';
      }
      const to = typeof kid === 'string' ? this.kids.indexOf(kid) : -1;
      if (to < 0) return `key rotation to key ${JSON.stringify(String(kid).slice(0, 20))}, which is not among the keys given to verify with`;
      if (this.at === undefined) {
        // A partial chain starting with a rotation: the key it leaves must be a trusted key older than the one it names.
        const from = typeof previousKid === 'string' ? this.kids.indexOf(previousKid) : -1;
        if (from < 0 || from >= to) return 'key rotation from a key that is not an earlier one of the keys given to verify with';
      } else if (genesis && previousKid === null && to === this.at) {
        // The log's very first record names the key it starts with (a log begun by a rotation, nothing before it).
      } else {
        if (previousKid !== this.kids[this.at]) return 'key rotation whose previousKid is not the key in force';
        if (to <= this.at) return 'key rotation back to a key that is not later than the key in force';
      }
      if (!verifyRecordHash(this.order[to]!, r.hash, r.sig)) return 'broker signature does not verify (key rotation record, new key)';
      this.at = to;
      return null;
    }
    if (this.at !== undefined) return verifyRecordHash(this.order[this.at]!, r.hash, r.sig) ? null : 'broker signature does not verify';
    for (let i = 0; i < this.order.length; i++) {
      if (verifyRecordHash(this.order[i]!, r.hash, r.sig)) {
        this.at = i;
        return null;
      }
    }
    return 'broker signature does not verify';
  }

  get done(): boolean {
    return this.broken !== undefined;
  }

  /** seq the next record should have. */
  get nextSeq(): number {
    return this.last ? this.last.seq + 1 : 1;
  }

  /** Records a break found outside the records themselves (e.g. a malformed export file). */
  reject(seq: number, id: string | null, reason: string): false {
    return this.broken ? false : this.fail(seq, id, reason);
  }

  private fail(seq: number, id: string | null, reason: string): false {
    this.broken = { seq, id, reason };
    return false;
  }

  /** The first unsigned record the next signed record would cover (verifyChainParallel reports a bad signature there). */
  get uncoveredFrom(): { seq: number; id: string | null; count: number } | null {
    return this.uncovered;
  }

  /** Reports the first unsigned record not covered by a later signature: what follows it cannot vouch for it. */
  private failUncovered(why: string): false {
    const u = this.uncovered!;
    this.count = u.count;
    this.last = null;
    return this.fail(u.seq, u.id, `record has no signature and none covers it (${why})`);
  }

  push(r: AuditRecord): boolean {
    if (this.broken) return false;
    const id = typeof r?.id === 'string' ? r.id : null;
    if (!r || !Number.isSafeInteger(r.seq) || typeof r.body !== 'string' || typeof r.hash !== 'string' || typeof r.prevHash !== 'string') {
      return this.fail(this.last ? this.last.seq + 1 : 1, id, 'malformed record');
    }
    const genesis = this.last === null && r.seq === 1 && r.prevHash === GENESIS_PREV_HASH;
    if (this.last === null) {
      if (r.seq !== 1 || r.prevHash !== GENESIS_PREV_HASH) {
        if (!this.allowPartial) {
          return this.fail(r.seq, id, r.seq !== 1 ? `chain starts at seq ${r.seq}, expected 1 (records missing before it)` : 'first record does not link to the genesis sentinel');
        }
        this.fromGenesis = false;
      }
    } else {
      if (r.seq !== this.last.seq + 1) {
        return this.fail(
          r.seq,
          id,
          r.seq > this.last.seq + 1
            ? `records ${this.last.seq + 1}..${r.seq - 1} are missing before it`
            : `out of order: seq ${r.seq} after ${this.last.seq}`,
        );
      }
      if (r.prevHash !== this.last.hash) return this.fail(r.seq, id, 'prevHash does not match the previous record (removed, reordered or changed)');
    }
    if (!HEX64.test(r.prevHash)) return this.fail(r.seq, id, 'malformed prevHash');
    if (recordHash(r) !== r.hash) return this.fail(r.seq, id, 'content does not match its hash (record changed)');
    if (r.sig === '') {
      // Covered by the next signed record: its signature is over a hash that commits, link by link, to this one.
      // A key rotation starts a new key's signatures and is always signed itself.
      if (r.kind === 'key_rotation') return this.fail(r.seq, id, 'key rotation record without a signature');
      if (genesis && this.at === undefined) this.at = 0;
      this.uncovered ??= { seq: r.seq, id, count: this.count };
    } else {
      // Records before a rotation are covered by the key they were appended under, never by the next key.
      if (this.uncovered && r.kind === 'key_rotation') return this.failUncovered('no signature by its key before the key rotation');
      if (this.checkSignatures) {
        const bad = this.signatureOk(r, genesis);
        // The unsigned records this signature was to cover are the first ones not vouched for.
        if (bad) return this.uncovered ? this.failUncovered(`the signature of record ${r.seq} that covers it: ${bad}`) : this.fail(r.seq, id, bad);
      }
      this.uncovered = null;
    }
    this.last = { seq: r.seq, hash: r.hash };
    this.count++;
    return true;
  }

  /** Checks the signed head against the last record: catches records cut off the end. */
  checkHead(head: AuditHead | null | undefined): boolean {
    if (this.broken) return false;
    if (this.uncovered) return this.failUncovered('no signed record after it');
    if (!head) return true;
    // Signed by the key in force at the end of the chain; with no records and several keys, by any of them.
    const headKeys = this.keyInForce ? [this.keyInForce] : this.order;
    if (!headKeys.some((k) => verifyHead(k, head.seq, head.hash, head.sig))) return this.fail(head.seq, null, 'signed head does not verify');
    const lastSeq = this.last?.seq ?? 0;
    if (head.seq > lastSeq) return this.fail(lastSeq + 1, null, `records ${lastSeq + 1}..${head.seq} are missing at the end (signed head is at ${head.seq})`);
    if (head.seq < lastSeq) return this.fail(head.seq + 1, null, `records after the signed head (${head.seq}) were not appended by the broker`);
    if (head.hash !== this.last?.hash) return this.fail(head.seq, null, 'last record does not match the signed head');
    return true;
  }

  /** The verdict with a signature failure found elsewhere folded in, if it comes first. */
  resultWith(sigFailure: { index: number; seq: number; id: string | null; reason?: string } | undefined): ChainResult {
    if (sigFailure && (!this.broken || sigFailure.seq <= this.broken.seq)) {
      this.broken = { seq: sigFailure.seq, id: sigFailure.id, reason: sigFailure.reason ?? 'broker signature does not verify' };
      this.count = sigFailure.index;
      this.last = null;
    }
    return this.result();
  }

  result(): ChainResult {
    // The chain ends here: unsigned records at its end are covered by nothing.
    if (this.uncovered && !this.broken) this.failUncovered('no signed record after it');
    return {
      ok: !this.broken,
      count: this.count,
      ...(this.broken ? { firstBroken: this.broken } : {}),
      ...(this.last && !this.broken ? { headHash: this.last.hash } : {}),
      fromGenesis: this.fromGenesis,
    };
  }
}

export interface VerifyOptions {
  /** The broker's signed head; when given, a log whose end was cut off fails. */
  head?: AuditHead | null;
  allowPartial?: boolean;
}

/** Verifies records in order, streaming (one record in memory at a time). */
export function verifyChain(records: Iterable<AuditRecord>, publicKey: KeyObject | readonly KeyObject[], o: VerifyOptions = {}): ChainResult {
  const v = new ChainVerifier(publicKey, o.allowPartial);
  for (const r of records) if (!v.push(r)) break;
  if ('head' in o) v.checkHead(o.head);
  return v.result();
}

/**
 * verifyChain for a server: the same checks on this thread, but it lets the event loop run every `every`
 * records, so other requests are not held up behind a long verification.
 */
export async function verifyChainYielding(records: Iterable<AuditRecord>, publicKey: KeyObject | readonly KeyObject[], o: VerifyOptions = {}, every = 1024): Promise<ChainResult> {
  const v = new ChainVerifier(publicKey, o.allowPartial);
  let n = 0;
  for (const r of records) {
    if (!v.push(r)) break;
    if (++n % every === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if ('head' in o) v.checkHead(o.head);
  return v.result();
}

export async function verifyChainAsync(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  publicKey: KeyObject | readonly KeyObject[],
  o: VerifyOptions = {},
): Promise<ChainResult> {
  const v = new ChainVerifier(publicKey, o.allowPartial);
  for await (const r of records) if (!v.push(r)) break;
  if ('head' in o) v.checkHead(o.head);
  return v.result();
}
