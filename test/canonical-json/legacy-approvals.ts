// Frozen copy of the former approvals canonical-JSON module (at commit ab715a5), kept only so test/canonical-json/ can prove that
// the single module writes the same bytes for everything the approval binding hash ever hashed. Do not change.
/**
 * Canonical JSON for hashing: object keys sorted by UTF-16 code units (as JSON.stringify sorts nothing and
 * engines preserve insertion order, two equal objects could otherwise serialise differently), no whitespace,
 * strings escaped by JSON.stringify. Close to RFC 8785 (JCS) for the values we hash — strings, integers,
 * booleans, arrays and plain objects — without claiming full JCS number formatting.
 *
 * Bytes (Uint8Array/Buffer, e.g. decoded blob parameters) are written as {"$bytes":"<base64>"} so that two
 * different payloads never collide with a string of the same text. Values JSON cannot carry (undefined
 * inside objects is skipped like JSON.stringify does; functions, symbols, bigint, NaN/Infinity) throw: a
 * binding hash must never silently drop part of the call.
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

function write(v: unknown, seen: Set<object>): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError('canonicalJson: non-finite number');
      return Object.is(v, -0) ? '0' : JSON.stringify(v);
    case 'object':
      break;
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
  }
  const obj = v as object;
  if (seen.has(obj)) throw new TypeError('canonicalJson: cyclic value');
  seen.add(obj);
  try {
    if (obj instanceof Uint8Array) {
      return `{"$bytes":${JSON.stringify(Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64'))}}`;
    }
    if (Array.isArray(obj)) {
      return `[${obj.map((x) => (x === undefined ? 'null' : write(x, seen))).join(',')}]`;
    }
    if (obj instanceof Date) return JSON.stringify(obj.toISOString());
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonicalJson: cannot encode a ${proto?.constructor?.name ?? 'object'}`);
    }
    const keys = Object.keys(obj).sort();
    const parts: string[] = [];
    for (const k of keys) {
      const x = (obj as Record<string, unknown>)[k];
      if (x === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${write(x, seen)}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    seen.delete(obj);
  }
}
