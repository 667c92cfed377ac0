/**
 * Old spellings of configuration keys, still accepted. guard-aws's YAML files (broker config, policies) spell
 * keys in camelCase; keys renamed to get there are rewritten to the new name before validation, and each old
 * spelling met costs one warning line naming the file and line, so a config keeps working while its owner is
 * told what to change. Giving both spellings of one key is an error: which one was meant cannot be known.
 */

/** Where a renamed key may appear: map keys, with `*` for any array element or map value. */
export interface KeyRename {
  at: readonly string[];
  from: string;
  to: string;
}

/** One old spelling met in a document: the path of the map holding it. */
export interface RenamedKey {
  path: (string | number)[];
  from: string;
  to: string;
  /** Both spellings were given. Nothing was renamed. */
  conflict: boolean;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mapsAt(value: unknown, pattern: readonly string[], path: (string | number)[], out: { map: Record<string, unknown>; path: (string | number)[] }[]): void {
  if (pattern.length === 0) {
    if (isMap(value)) out.push({ map: value, path });
    return;
  }
  const [head, ...rest] = pattern as [string, ...string[]];
  if (head === '*') {
    if (Array.isArray(value)) value.forEach((v, i) => mapsAt(v, rest, [...path, i], out));
    else if (isMap(value)) for (const [k, v] of Object.entries(value)) mapsAt(v, rest, [...path, k], out);
    return;
  }
  if (isMap(value) && Object.hasOwn(value, head)) mapsAt(value[head], rest, [...path, head], out);
}

/**
 * Rewrites old key spellings in `data` (plain data from a YAML/JSON parse; changed in place) and lists every one
 * met, in document order per rename. A conflict (both spellings) is listed and left as it is, so the schema still
 * rejects the unknown old key if the caller goes on.
 */
export function renameDeprecatedKeys(data: unknown, renames: readonly KeyRename[]): RenamedKey[] {
  const met: RenamedKey[] = [];
  for (const r of renames) {
    const maps: { map: Record<string, unknown>; path: (string | number)[] }[] = [];
    mapsAt(data, r.at, [], maps);
    for (const { map, path } of maps) {
      if (!Object.hasOwn(map, r.from)) continue;
      const conflict = Object.hasOwn(map, r.to);
      met.push({ path, from: r.from, to: r.to, conflict });
      if (conflict) continue;
      map[r.to] = map[r.from];
      delete map[r.from];
    }
  }
  return met;
}

/** The one-line message for an old spelling at `where` (`file:line:col`; empty when the caller adds it). */
export function deprecationMessage(where: string, k: Pick<RenamedKey, 'from' | 'to' | 'conflict'>): string {
  const text = k.conflict ? `\`${k.from}\` and \`${k.to}\` are the same setting; give only \`${k.to}\`` : `warning: \`${k.from}\` is deprecated; write \`${k.to}\``;
  return where ? `${where}: ${text}` : text;
}

/** Where deprecation warnings go by default: one line on stderr. */
export function warnOnStderr(line: string): void {
  process.stderr.write(`guard-aws: ${line}\n`);
}
