/**
 * IAM reads `*` and `?` in a policy's Resource as wildcards and `${…}` as a policy variable. A name the caller
 * chooses (an S3 key `*`, a table named `?`, a secret id with `${aws:username}`) must not become one: a GetObject
 * on key `*` would otherwise be granted on the whole bucket. IAM's special-character variables write them
 * literally — `${*}`, `${?}`, `${$}` (IAM User Guide, "IAM policy elements: Variables and tags", *Specifying
 * special characters*). Wildcards guard-aws adds itself (a recursive prefix `p*`, a secret's `-??????`) are written
 * after escaping and stay wildcards.
 */
export function iamLiteral(name: string): string {
  return name.replace(/[$*?]/g, (special) => `\${${special}}`);
}

/** A copy of decoded API parameters with every string escaped by `iamLiteral`, for building resource ARNs. */
export function iamLiteralParams<T>(value: T): T {
  if (typeof value === 'string') return iamLiteral(value) as T;
  if (Array.isArray(value)) return value.map((element) => iamLiteralParams(element)) as T;
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const escaped: Record<string, unknown> = {};
    for (const [member, child] of Object.entries(value)) escaped[member] = iamLiteralParams(child);
    return escaped as T;
  }
  return value;
}
