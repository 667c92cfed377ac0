import { readFileSync } from 'node:fs';
import { GuardError } from '../errors.js';
import { buildSet, compileRule, type CompiledRule, type DefaultEffect, type PolicySet } from './compiled.js';
import { formatDiagnostic, MAX_FILE_BYTES, parsePolicyText, positionOf, type Diagnostic, type ParsedPolicyFile } from './source.js';
import type { MaskingRules } from './types.js';

export interface LoadOptions {
  /** Reads a file (injected for tests and for the broker). Defaults to fs.readFileSync. */
  readFile?: (path: string) => Buffer | string;
}

/** With no policy setting a default, anything no rule matches is denied. */
export const BUILTIN_DEFAULT: DefaultEffect = { effect: 'deny', reason: 'no rule matched and no policy sets a default (default deny)' };

export interface LoadResult {
  set?: PolicySet;
  /** Rules of every file that parsed, even when another file failed (so `policy check` can report on them). */
  rules: CompiledRule[];
  files: ParsedPolicyFile[];
  diagnostics: Diagnostic[];
}

function readText(path: string, opts: LoadOptions): { text?: string; error?: Diagnostic } {
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

/**
 * Parses, validates and merges policy files without throwing. Merging: the rules of all files, in the order
 * the files are given and then in file order; the default effect of the LAST file that sets one; masking
 * fields and patterns of all files. Rule ids must be unique across the files.
 */
export function loadPoliciesDetailed(paths: string[], opts: LoadOptions = {}): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const files: ParsedPolicyFile[] = [];
  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  let def: DefaultEffect = BUILTIN_DEFAULT;
  const masking: MaskingRules = { fields: [], patterns: [] };
  if (paths.length === 0) {
    diagnostics.push({ file: '(none)', line: 1, col: 1, severity: 'error', message: 'no policy files given' });
  }
  for (const path of paths) {
    const { text, error } = readText(path, opts);
    if (error) {
      diagnostics.push(error);
      continue;
    }
    const parsed = parsePolicyText(path, text!);
    files.push(parsed);
    diagnostics.push(...parsed.errors);
    const spec = parsed.spec;
    if (!spec) continue;
    spec.rules.forEach((r, i) => {
      const pos = positionOf(parsed.source, ['rules', i]);
      const prev = seen.get(r.id.toLowerCase());
      if (prev) {
        diagnostics.push({ file: path, ...positionOf(parsed.source, ['rules', i, 'id']), severity: 'error', message: `rules[${i}].id: duplicate rule id \`${r.id}\` (first defined at ${prev})` });
        return;
      }
      seen.set(r.id.toLowerCase(), `${path}:${pos.line}`);
      rules.push(compileRule(r, rules.length, { file: path, ...pos }));
    });
    if (spec.default !== undefined) {
      const pos = positionOf(parsed.source, ['default']);
      const d = typeof spec.default === 'string' ? { effect: spec.default } : spec.default;
      def = {
        effect: d.effect,
        reason: ('reason' in d && d.reason) || `no rule matched; default ${d.effect} from ${path}`,
        source: `${path}:${pos.line}`,
      };
      if ('approval' in d && d.approval) def.approval = { groups: d.approval.groups, count: d.approval.count };
    }
    if (spec.masking?.fields) masking.fields.push(...spec.masking.fields);
    if (spec.masking?.patterns) masking.patterns.push(...spec.masking.patterns);
  }
  const failed = diagnostics.some((d) => d.severity === 'error');
  return { set: failed ? undefined : buildSet(paths, rules, def, masking), rules, files, diagnostics };
}

/**
 * Loads and merges policy files. Throws GuardError `policy_invalid` (exit 78) naming the first problem as
 * `file:line:col: message`; `details.errors` lists them all.
 */
export function loadPolicies(paths: string[], opts: LoadOptions = {}): PolicySet {
  const r = loadPoliciesDetailed(paths, opts);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (!r.set || errors.length) {
    const lines = errors.map(formatDiagnostic);
    const more = lines.length > 1 ? ` (and ${lines.length - 1} more problem${lines.length > 2 ? 's' : ''}; run \`guard-aws policy check\`)` : '';
    throw new GuardError('policy_invalid', `${lines[0] ?? 'invalid policy'}${more}`, { details: { errors: lines } });
  }
  return r.set;
}
