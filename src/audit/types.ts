/**
 * One record of the append-only audit log. `body` is stored as the exact canonical JSON text that was hashed,
 * so an exported record can be re-verified byte for byte without re-serialising anything.
 */
export interface AuditRecord {
  /** Position in the chain, 1, 2, 3… with no gaps. */
  seq: number;
  id: string;
  kind: AuditKind;
  /** ISO-8601 time the broker appended it. */
  at: string;
  grantId: string | null;
  subject: string | null;
  body: string;
  /** Hex SHA-256 of the previous record (GENESIS_PREV_HASH for seq 1). */
  prevHash: string;
  /** Hex SHA-256(prevHash raw || canonical header || "\n" || body); see chain.ts. */
  hash: string;
  /**
   * base64url broker signature over the record hash, or '' for a transcript stored in a batch before the batch's
   * last record: that record's signature covers it through the hash links (SECURITY.md, "The audit log").
   */
  sig: string;
}

/**
 * `transcript`: a signed transcript the client uploaded (body: {envelope, uploadedBy, callerVerified}).
 * `unreported`: the broker's note that a grant expired with no transcript (body: {grant, reason}).
 */
/**
 * `key_rotation`: the broker began signing with a new key from this record on (body: kid, alg, publicPem,
 * previousKid, reason); the record itself is signed with the new key.
 */
/** Every kind of record the log holds (export and verify check lines against this list). */
export const AUDIT_KINDS = ['transcript', 'unreported', 'key_rotation'] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** The last record's position and hash, signed: detects records cut off the end of the log. */
export interface AuditHead {
  seq: number;
  hash: string;
  sig: string;
}

export interface ChainBreak {
  /** seq of the first record that does not verify (or the first missing one). */
  seq: number;
  id: string | null;
  reason: string;
}

export interface ChainResult {
  ok: boolean;
  /** Records verified before the first break (all of them when ok). */
  count: number;
  firstBroken?: ChainBreak;
  /** Hash of the last record, when the whole chain verified. */
  headHash?: string;
  /** False when the records did not start at seq 1 (a partial export): only the links given were checked. */
  fromGenesis: boolean;
}
