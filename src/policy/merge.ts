import { buildSet, compileRule, type CompiledRule, type DefaultEffect, type PolicySet } from './compiled.js';
import type { Diagnostic } from './diagnostics.js';
import type { PolicyFileSpec } from './schema.js';
import type { MaskingRules } from './types.js';

/** With no policy setting a default, anything no rule matches is denied. */
export const BUILTIN_DEFAULT: DefaultEffect = { effect: 'deny', reason: 'no rule matched and no policy sets a default (default deny)' };

export interface Pos {
  line: number;
  col: number;
}

/** A validated policy file with the positions the merge reports (so it can come from YAML or from the cache). */
export interface FileSpec {
  path: string;
  spec: PolicyFileSpec;
  rulePos: Pos[];
  idPos: Pos[];
  defaultLine: number;
  /** Index in the file of each rule of `spec.rules` when only some rules were valid (check only). */
  indices?: number[];
}

/**
 * Merges validated files: the rules of all files, in the order the files are given and then in file order;
 * the default effect of the LAST file that sets one; masking fields and patterns of all files. Rule ids must
 * be unique across the files (compared case-insensitively).
 */
export function mergeSpecs(
  paths: string[],
  files: FileSpec[],
  diagnostics: Diagnostic[],
): { set?: PolicySet | undefined; rules: CompiledRule[]; diagnostics: Diagnostic[] } {
  const rules: CompiledRule[] = [];
  const seen = new Map<string, string>();
  let def: DefaultEffect = BUILTIN_DEFAULT;
  const masking: MaskingRules = { fields: [], patterns: [] };
  for (const f of files) {
    const { path, spec } = f;
    spec.rules.forEach((r, i) => {
      const pos = f.rulePos[i]!;
      const prev = seen.get(r.id.toLowerCase());
      if (prev) {
        diagnostics.push({ file: path, ...f.idPos[i]!, severity: 'error', message: `rules[${i}].id: duplicate rule id \`${r.id}\` (first defined at ${prev})` });
        return;
      }
      seen.set(r.id.toLowerCase(), `${path}:${pos.line}`);
      rules.push(compileRule(r, rules.length, { file: path, ...pos }, f.indices?.[i] ?? i));
    });
    if (spec.default !== undefined) {
      const d = typeof spec.default === 'string' ? { effect: spec.default } : spec.default;
      def = {
        effect: d.effect,
        reason: ('reason' in d && d.reason) || `no rule matched; default ${d.effect} from ${path}`,
        source: `${path}:${f.defaultLine}`,
      };
      if ('approval' in d && d.approval) def.approval = { groups: d.approval.groups, count: d.approval.count };
    }
    if (spec.masking?.fields) masking.fields.push(...spec.masking.fields);
    if (spec.masking?.patterns) masking.patterns.push(...spec.masking.patterns);
  }
  const failed = diagnostics.some((d) => d.severity === 'error');
  return { set: failed ? undefined : buildSet(paths, rules, def, masking), rules, diagnostics };
}
