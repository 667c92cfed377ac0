// Frozen copy of the former transcript canonical-JSON module (at commit ab715a5), kept only so test/canonical-json/ can prove that
// the single module writes the same bytes for everything transcripts and the audit chain ever signed. Do not change.
/**
 * Deterministic JSON: the same value always serialises to the same bytes, so a signature or a hash over it
 * can be re-checked by anyone who parses and re-serialises it. Follows RFC 8785 (JSON Canonicalization
 * Scheme): object members sorted by their names' UTF-16 code units (§3.2.3), no whitespace (§3.2.1), strings
 * escaped as ECMAScript's JSON.stringify does (§3.2.2.2), numbers in ECMAScript's shortest round-trip form
 * (§3.2.2.3). Properties whose value is `undefined` are left out, as JSON.stringify does; anything JSON cannot
 * represent (NaN, Infinity, bigint, functions, symbols) is refused rather than silently changed.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out, '$');
  return out.join('');
}

function write(v: unknown, out: string[], path: string): void {
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonical JSON: ${path} is not a finite number`);
      // ECMAScript Number-to-String is exactly RFC 8785's number format; -0 serialises as 0.
      out.push(Object.is(v, -0) ? '0' : String(v));
      return;
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: ${path} has type ${typeof v}, which JSON cannot represent`);
  }
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(',');
      const item = v[i];
      // JSON.stringify writes null for undefined array slots; do the same so arrays keep their length.
      write(item === undefined ? null : item, out, `${path}[${i}]`);
    }
    out.push(']');
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`canonical JSON: ${path} is a ${proto?.constructor?.name ?? 'non-plain'} object, not a plain object`);
  }
  const obj = v as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  out.push('{');
  keys.forEach((k, i) => {
    if (i) out.push(',');
    out.push(JSON.stringify(k), ':');
    write(obj[k], out, `${path}.${k}`);
  });
  out.push('}');
}
