/**
 * IAM reads `*` and `?` in a policy's Resource as wildcards and `${…}` as a policy variable. A name the caller
 * chooses (an S3 key `*`, a table named `?`, a secret id with `${aws:username}`) must not become one: a GetObject
 * on key `*` would otherwise be granted on the whole bucket. IAM's special-character variables write them
 * literally — `${*}`, `${?}`, `${$}` (IAM User Guide, "IAM policy elements: Variables and tags", *Specifying
 * special characters*). Wildcards guard-aws adds itself (a recursive prefix `p*`, a secret's `-??????`) are written
 * after escaping and stay wildcards.
 */
export function iamLiteral(s: string): string {
  return s.replace(/[$*?]/g, (c) => `\${${c}}`);
}

/** A copy of decoded API parameters with every string escaped by `iamLiteral`, for building resource ARNs. */
export function iamLiteralParams<T>(v: T): T {
  if (typeof v === 'string') return iamLiteral(v) as T;
  if (Array.isArray(v)) return v.map((x) => iamLiteralParams(x)) as T;
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = iamLiteralParams(x);
    return out as T;
  }
  return v;
}
