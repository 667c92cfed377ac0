import { readFileSync } from 'node:fs';
import type { CompiledRule, PolicySet } from './compiled.js';
import { policyInvalid, type Diagnostic } from './diagnostics.js';
import { mergeSpecs, type FileSpec } from './merge.js';
import { MAX_FILE_BYTES, parsePolicyText, positionOf, type ParsedPolicyFile } from './source.js';

export { BUILTIN_DEFAULT } from './merge.js';

export interface LoadOptions {
  /** Reads a file (injected for tests and for the broker). Defaults to fs.readFileSync. */
  readFile?: (path: string) => Buffer | string;
  /** Receives one line per deprecated key spelling (default: stderr). */
  warn?: (line: string) => void;
}

export interface LoadResult {
  /** Undefined when any file has an error (the rules and diagnostics are still there for `policy check`). */
  set?: PolicySet | undefined;
  /** Rules of every file that parsed, even when another file failed (so `policy check` can report on them). */
  rules: CompiledRule[];
  files: ParsedPolicyFile[];
  /** The validated files with positions (what the start-up cache stores). */
  specs: FileSpec[];
  diagnostics: Diagnostic[];
}

export function readPolicyText(path: string, opts: LoadOptions): { text?: string; error?: Diagnostic } {
  try {
    const raw = (opts.readFile ?? readFileSync)(path);
    const len = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.length;
    if (len > MAX_FILE_BYTES) {
      return { error: { file: path, line: 1, col: 1, severity: 'error', message: `file is larger than ${MAX_FILE_BYTES} bytes` } };
    }
    return { text: typeof raw === 'string' ? raw : raw.toString('utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    return { error: { file: path, line: 1, col: 1, severity: 'error', message: `cannot read policy file (${code})` } };
  }
}

/** Parses and validates one file's text (YAML + schema) into a FileSpec with positions. */
function specOfText(path: string, text: string, warn?: (line: string) => void): { parsed: ParsedPolicyFile; spec?: FileSpec } {
  const parsed = parsePolicyText(path, text, warn);
  const spec = parsed.spec ?? parsed.partial?.spec;
  if (!spec) return { parsed };
  const idx = parsed.spec ? undefined : parsed.partial!.indices;
  const at = (i: number) => idx?.[i] ?? i;
  return {
    parsed,
    spec: {
      path,
      spec,
      rulePos: spec.rules.map((_, i) => positionOf(parsed.source, ['rules', at(i)])),
      idPos: spec.rules.map((_, i) => positionOf(parsed.source, ['rules', at(i), 'id'])),
      defaultLine: positionOf(parsed.source, ['default']).line,
      ...(idx ? { indices: idx } : {}),
    },
  };
}

/** Parses, validates and merges policy files without throwing (merge rules: see mergeSpecs). */
export function loadPoliciesDetailed(paths: string[], opts: LoadOptions = {}): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const files: ParsedPolicyFile[] = [];
  const specs: FileSpec[] = [];
  if (paths.length === 0) {
    diagnostics.push({ file: '(none)', line: 1, col: 1, severity: 'error', message: 'no policy files given' });
  }
  for (const path of paths) {
    const { text, error } = readPolicyText(path, opts);
    if (error) {
      diagnostics.push(error);
      continue;
    }
    const { parsed, spec } = specOfText(path, text!, opts.warn);
    files.push(parsed);
    diagnostics.push(...parsed.errors);
    if (spec) specs.push(spec);
  }
  const merged = mergeSpecs(paths, specs, diagnostics);
  return { set: merged.set, rules: merged.rules, files, specs, diagnostics: merged.diagnostics };
}

/**
 * Loads and merges policy files. Throws GuardError `policy_invalid` (exit 78) naming the first problem as
 * `file:line:col: message`; `details.errors` lists them all.
 */
export function loadPolicies(paths: string[], opts: LoadOptions = {}): PolicySet {
  const r = loadPoliciesDetailed(paths, opts);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (!r.set || errors.length) throw policyInvalid(errors);
  return r.set;
}
