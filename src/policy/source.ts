import { isAlias, isMap, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { deprecationMessage, renameDeprecatedKeys, warnOnStderr } from '../config/deprecated-keys.js';
import { POLICY_KEY_RENAMES, policyFileSchema, ruleSchema, type PolicyFileSpec } from './schema.js';

import type { Diagnostic } from './diagnostics.js';
export { formatDiagnostic, type Diagnostic } from './diagnostics.js';

/** A YAML document with its line counter, so any node can be reported as line:col. */
export interface YamlSource {
  file: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

/** Largest policy/test file accepted (a policy is text written by people; this only bounds hostile input). */
export const MAX_FILE_BYTES = 1 << 20;

export function parseYaml(file: string, text: string): { source: YamlSource; errors: Diagnostic[] } {
  const lines = new LineCounter();
  // uniqueKeys: a repeated key is an error, never "last one wins" (a second `effect:` must not go unnoticed).
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  // After the first few syntax errors the rest are usually consequences; report the ones that help.
  const errors: Diagnostic[] = doc.errors.slice(0, 3).map((e) => {
    const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
    return {
      file,
      line: pos.line,
      col: pos.col,
      severity: 'error' as const,
      message: `YAML: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    };
  });
  // A mapping key that is itself a mapping, a list or a tagged object (`{a: 1}: x`, `? [a]`, `!!binary …`, or an
  // alias to one) has no meaning in a policy; turning it into data would stringify it (and make yaml print a
  // process warning). Refuse it where it is written.
  if (errors.length === 0) {
    visit(doc, {
      Pair(_key, pair) {
        const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
        const plain = key === null || key === undefined || (isScalar(key) && (key.value === null || typeof key.value !== 'object'));
        if (errors.length >= 3 || plain) return undefined;
        const range = (pair.key as { range?: [number, number, number] }).range;
        const pos = range ? lines.linePos(range[0]) : { line: 1, col: 1 };
        errors.push({ file, line: pos.line, col: pos.col, severity: 'error', message: 'YAML: a key must be a plain value, not a mapping or a list' });
        return undefined;
      },
    });
  }
  return { source: { file, doc, lines }, errors };
}

/** line:col of the node at `path` (or of its nearest existing ancestor). */
export function positionOf(src: YamlSource, path: readonly PropertyKey[]): { line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? src.doc.contents : src.doc.getIn(path.slice(0, n) as unknown[], true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return src.lines.linePos(range[0]);
  }
  return { line: 1, col: 1 };
}

/** line:col of key `key` inside the mapping at `path`. */
function keyPosition(src: YamlSource, path: readonly PropertyKey[], key: string): { line: number; col: number } | undefined {
  const node = path.length === 0 ? src.doc.contents : src.doc.getIn(path as unknown[], true);
  if (!isMap(node)) return undefined;
  for (const item of node.items) {
    const k = item.key as { value?: unknown; range?: [number, number, number] } | null;
    if (k && String(k.value) === key && k.range) return src.lines.linePos(k.range[0]);
  }
  return undefined;
}

export function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** Zod issues as diagnostics at the node they are about. */
export function zodDiagnostics(src: YamlSource, error: z.ZodError): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of error.issues) {
    const path = issue.path;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const pos = keyPosition(src, path, key) ?? positionOf(src, path);
        out.push({ file: src.file, ...pos, severity: 'error', message: `${pathString([...path, key])}: unknown field \`${key}\`` });
      }
      continue;
    }
    const pos = positionOf(src, path);
    const where = path.length ? `${pathString(path)}: ` : '';
    out.push({ file: src.file, ...pos, severity: 'error', message: `${where}${issue.message}` });
  }
  return out;
}

/**
 * The document as plain data. Unresolved aliases and alias bombs ("billion laughs": `maxAliasCount`) are
 * reported as diagnostics instead of thrown.
 */
export function toData(src: YamlSource): { data?: unknown; error?: Diagnostic } {
  try {
    return { data: src.doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (e) {
    return { error: { file: src.file, line: 1, col: 1, severity: 'error', message: `YAML: ${(e as Error).message.split('\n')[0]}` } };
  }
}

export interface ParsedPolicyFile {
  source: YamlSource;
  spec?: PolicyFileSpec;
  errors: Diagnostic[];
  /**
   * When the file as a whole is invalid: its rules that are valid on their own (with their index in the file),
   * so `policy check` can still report on their meaning. Never loaded for deciding.
   */
  partial?: { spec: PolicyFileSpec; indices: number[] };
}

/** `warn` receives one line per deprecated key spelling met (default: stderr). */
export function parsePolicyText(file: string, text: string, warn: (line: string) => void = warnOnStderr): ParsedPolicyFile {
  const { source, errors } = parseYaml(file, text);
  if (errors.length) return { source, errors };
  const { data, error } = toData(source);
  if (error) return { source, errors: [error] };
  if (data === null || data === undefined || typeof data !== 'object' || Array.isArray(data)) {
    return {
      source,
      errors: [{ file, ...positionOf(source, []), severity: 'error', message: 'a policy file must be a mapping with `version: 1` and `rules`' }],
    };
  }
  const conflicts: Diagnostic[] = [];
  const met = renameDeprecatedKeys(data, POLICY_KEY_RENAMES).map((k) => ({ k, pos: keyPosition(source, k.path, k.from) ?? positionOf(source, k.path) }));
  met.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
  for (const { k, pos } of met) {
    if (k.conflict) conflicts.push({ file, ...pos, severity: 'error', message: deprecationMessage('', k) });
    else warn(deprecationMessage(`${file}:${pos.line}:${pos.col}`, k));
  }
  if (conflicts.length) return { source, errors: conflicts };
  const parsed = policyFileSchema.safeParse(data);
  if (!parsed.success) {
    const result: ParsedPolicyFile = { source, errors: zodDiagnostics(source, parsed.error) };
    const raw = (data as { rules?: unknown }).rules;
    if (Array.isArray(raw)) {
      const rules: PolicyFileSpec['rules'] = [];
      const indices: number[] = [];
      raw.forEach((r, i) => {
        const one = ruleSchema.safeParse(r);
        if (one.success) {
          rules.push(one.data);
          indices.push(i);
        }
      });
      result.partial = { spec: { version: 1, rules }, indices };
    }
    return result;
  }
  const extra: Diagnostic[] = [];
  parsed.data.masking?.patterns?.forEach((p, i) => {
    try {
      new RegExp(p, 'u');
    } catch (e) {
      extra.push({
        file,
        ...positionOf(source, ['masking', 'patterns', i]),
        severity: 'error',
        message: `masking.patterns[${i}]: not a valid regular expression (${(e as Error).message.split('\n')[0]})`,
      });
    }
  });
  return { source, spec: parsed.data, errors: extra };
}
