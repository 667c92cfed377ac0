import { actionInfo, actionsForPrefix, allServicePrefixes, isKnownServicePrefix } from '../invocation/iam-catalog.js';
import { commandModel, modelIndex } from '../invocation/model.js';
import { EFFECT_RANK, type CompiledRule } from './compiled.js';
import { globCovers, hasWildcard, wildcardMatch } from './glob.js';
import { loadPoliciesDetailed, type LoadOptions } from './load.js';
import { positionOf, type Diagnostic, type ParsedPolicyFile } from './source.js';
import type { ConditionSpec } from './schema.js';

/**
 * `guard-aws policy check`: everything `loadPolicies` rejects, plus meaning — actions the Service Authorization
 * Reference does not know, rules that can never match (errors), and rules another rule makes useless
 * (warnings: the policy still means what it says, but the rule is dead weight or a sign of a mistake).
 */

export interface CheckResult {
  diagnostics: Diagnostic[];
  errors: number;
  warnings: number;
  rules: number;
}

/** Known actions matched by one glob (`s3:Get*`, `*:Describe*`, `*`), in SAR spelling. */
function knownActionsFor(glob: string): string[] {
  if (glob === '*') return allServicePrefixes().flatMap((p) => actionsForPrefix(p));
  const colon = glob.indexOf(':');
  const prefixGlob = glob.slice(0, colon);
  const nameGlob = glob.slice(colon + 1);
  const prefixes = hasWildcard(prefixGlob)
    ? allServicePrefixes().filter((p) => wildcardMatch(prefixGlob, p, true))
    : isKnownServicePrefix(prefixGlob)
      ? [prefixGlob.toLowerCase()]
      : [];
  const out: string[] = [];
  for (const p of prefixes) {
    if (!hasWildcard(nameGlob)) {
      const info = actionInfo(`${p}:${nameGlob}`);
      if (info) out.push(info.action);
      continue;
    }
    for (const a of actionsForPrefix(p)) if (wildcardMatch(nameGlob, a.slice(a.indexOf(':') + 1), true)) out.push(a);
  }
  return out;
}

function rulePos(file: ParsedPolicyFile | undefined, r: CompiledRule, field: PropertyKey[]): { line: number; col: number } {
  if (!file) return { line: r.line, col: r.col };
  return positionOf(file.source, ['rules', r.srcIndex, ...field]);
}

function checkActions(r: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  const m = r.spec.match;
  const err = (field: PropertyKey[], message: string, severity: Diagnostic['severity'] = 'error') =>
    out.push({ file: r.file, ...rulePos(file, r, ['match', ...field]), severity, message: `rule \`${r.id}\`: ${message}` });

  let candidates: Set<string> | null = null;
  if (m.actions) {
    candidates = new Set();
    m.actions.forEach((g, i) => {
      const colon = g.indexOf(':');
      if (colon > 0 && !hasWildcard(g.slice(0, colon)) && !isKnownServicePrefix(g.slice(0, colon))) {
        err(['actions', i], `unknown service prefix in \`${g}\``);
        return;
      }
      const known = knownActionsFor(g);
      if (known.length === 0) err(['actions', i], `\`${g}\` matches no action in the Service Authorization Reference`);
      for (const a of known) candidates!.add(a);
    });
  }
  const excluded = new Set<string>();
  m.notActions?.forEach((g, i) => {
    const known = knownActionsFor(g);
    if (known.length === 0) err(['notActions', i], `\`${g}\` matches no action in the Service Authorization Reference`, 'warning');
    for (const a of known) excluded.add(a);
  });
  if (candidates && candidates.size > 0) {
    for (const a of excluded) candidates.delete(a);
    if (candidates.size === 0) {
      err(['notActions'], 'can never match: notActions excludes every action the rule names');
      return;
    }
    if (m.access) {
      const levels = new Set(m.access);
      const left = [...candidates].filter((a) => {
        const lvl = actionInfo(a)?.accessLevel;
        return lvl !== undefined && levels.has(lvl);
      });
      if (left.length === 0) err(['access'], `can never match: none of the actions has access level ${m.access.join(' or ')}`);
    }
  }
}

/** CLI sub-commands of a command (operations, customizations, `wait`, `help`), or undefined when unknown. */
function subcommandsOf(command: string): string[] | undefined {
  const entry = modelIndex().commands[command];
  if (!entry || !Object.prototype.hasOwnProperty.call(modelIndex().commands, command)) return undefined;
  const out = ['help', ...Object.keys((entry.custom as { sub?: Record<string, unknown> } | undefined)?.sub ?? {})];
  const model = entry.file ? commandModel(command) : undefined;
  if (model) out.push(...model.operationNames(), ...Object.keys(model.custom), 'wait');
  return out;
}

function checkCommands(r: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  r.spec.match.commands?.forEach((glob, i) => {
    const [word, sub, ...rest] = glob.trim().split(/\s+/);
    const err = (message: string): void => {
      out.push({ file: r.file, ...rulePos(file, r, ['match', 'commands', i]), severity: 'error', message: `rule \`${r.id}\`: ${message}` });
    };
    if (!word || hasWildcard(word)) return;
    const subs = subcommandsOf(word);
    if (!subs) err(`\`${word}\` is not an aws command, so \`${glob}\` can never match`);
    else if (rest.length) err(`\`${glob}\` has more than a command and a sub-command, so it can never match`);
    else if (sub !== undefined && !subs.some((s) => wildcardMatch(sub, s, true))) err(`\`${word}\` has no sub-command matching \`${sub}\`, so \`${glob}\` can never match`);
  });
}

function checkNeverMatches(r: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  const m = r.spec.match;
  const err = (field: PropertyKey[], message: string) =>
    out.push({ file: r.file, ...rulePos(file, r, ['match', ...field]), severity: 'error', message: `rule \`${r.id}\`: ${message}` });
  if (m.kinds && r.perPermission && m.kinds.every((k) => k === 'no_api_call' || k === 'local')) {
    err(['kinds'], 'can never match: calls of these kinds need no IAM actions, but the rule matches on actions, access or resources');
  }
  m.accounts?.forEach((a, i) => {
    if (!hasWildcard(a) && !/^\d{12}$/.test(a)) err(['accounts', i], `can never match: \`${a}\` is not a 12-digit account id`);
  });
  if (m.risks && m.risksAll === undefined && m.risks.length === 0) err(['risks'], 'can never match: empty risk list');
  const bothEq = (conds: ConditionSpec[] | undefined, field: string) =>
    conds?.forEach((c, i) => {
      if (c.exists === false && conds.some((d, j) => j !== i && d.path.toLowerCase() === c.path.toLowerCase() && d.exists !== false)) {
        err([field, i], `can never match: \`${c.path}\` must both be absent and satisfy another condition`);
      }
    });
  bothEq(m.params, 'params');
  bothEq(m.globals, 'globals');
}

// ─── Shadowing ───────────────────────────────────────────────────────────────────────────────────────────────

function listCovered(outer: string[] | undefined, inner: string[] | undefined, ci: boolean): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((i) => outer.some((o) => globCovers(o, i, ci)));
}

function subset<T>(outer: readonly T[] | undefined, inner: readonly T[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((x) => outer.includes(x));
}

function sameConditions(outer: ConditionSpec[] | undefined, inner: ConditionSpec[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return outer.every((o) => inner.some((i) => JSON.stringify(i) === JSON.stringify(o)));
}

/**
 * Does rule `a` match everything rule `b` matches? Sound, not complete (it may miss a real shadow, never
 * invents one): each condition of `a` must be implied by the same condition of `b`.
 */
export function subsumes(a: CompiledRule, b: CompiledRule): boolean {
  const x = a.spec.match;
  const y = b.spec.match;
  // A looser rule (deny/approve) matching case-insensitively covers more; comparing strictly is sound for both.
  if (!listCovered(x.actions, y.actions, true)) return false;
  if (x.notActions && !(y.notActions && x.notActions.every((n) => y.notActions!.some((m) => m.toLowerCase() === n.toLowerCase())))) return false;
  if (!subset(x.access, y.access)) return false;
  if (x.resources && !x.resources.includes('*') && !listCovered(x.resources, y.resources, false)) return false;
  if (!listCovered(x.commands, y.commands, false)) return false;
  if (!subset(x.kinds, y.kinds)) return false;
  if (x.risks && !(y.risks && y.risks.every((r) => x.risks!.includes(r))) && !(y.risksAll && y.risksAll.some((r) => x.risks!.includes(r)))) return false;
  if (x.risksAll && !(y.risksAll && x.risksAll.every((r) => y.risksAll!.includes(r)))) return false;
  if (!sameConditions(x.params, y.params) || !sameConditions(x.globals, y.globals)) return false;
  if (!listCovered(x.subjects, y.subjects, false) || !listCovered(x.groups, y.groups, false)) return false;
  if (x.notSubjects && JSON.stringify(x.notSubjects) !== JSON.stringify(y.notSubjects)) return false;
  if (x.notGroups && JSON.stringify(x.notGroups) !== JSON.stringify(y.notGroups)) return false;
  if (!listCovered(x.accounts, y.accounts, false) || !listCovered(x.targets, y.targets, false)) return false;
  if (!listCovered(x.regions, y.regions, false)) return false;
  if (x.crossAccount !== undefined && x.crossAccount !== y.crossAccount) return false;
  return true;
}

function approvalImplied(a: CompiledRule, b: CompiledRule): boolean {
  const x = a.approval!;
  const y = b.approval!;
  return y.count <= x.count && x.groups.every((g) => y.groups.includes(g));
}

function checkShadowing(rules: CompiledRule[], files: Map<string, ParsedPolicyFile>, out: Diagnostic[]): void {
  for (const b of rules) {
    for (const a of rules) {
      if (a === b) continue;
      const stronger = EFFECT_RANK[a.effect] > EFFECT_RANK[b.effect];
      const earlierSame = a.effect === b.effect && a.index < b.index;
      if (!(stronger || earlierSame) || !subsumes(a, b)) continue;
      // Every matching approve rule adds its approval requirement, so a covered approve rule still counts
      // unless it asks for no more than the rule covering it.
      if (earlierSame && a.effect === 'approve' && !approvalImplied(a, b)) continue;
      const why = stronger ? `the stronger ${a.effect} rule \`${a.id}\` (${a.source}) matches everything it matches` : `the earlier rule \`${a.id}\` (${a.source}) matches everything it matches`;
      out.push({
        file: b.file,
        ...rulePos(files.get(b.file), b, []),
        severity: 'warning',
        message: `rule \`${b.id}\` is shadowed and never decides anything: ${why}`,
      });
      break;
    }
  }
}

export function checkPolicies(paths: string[], opts: LoadOptions = {}): CheckResult {
  const loaded = loadPoliciesDetailed(paths, opts);
  const out: Diagnostic[] = [...loaded.diagnostics];
  const files = new Map(loaded.files.map((f) => [f.source.file, f]));
  const rules = loaded.rules;
  for (const r of rules) {
    checkActions(r, files.get(r.file), out);
    checkNeverMatches(r, files.get(r.file), out);
    checkCommands(r, files.get(r.file), out);
  }
  checkShadowing(rules, files, out);
  out.sort((p, q) => (p.file === q.file ? p.line - q.line || p.col - q.col : paths.indexOf(p.file) - paths.indexOf(q.file)));
  const errors = out.filter((d) => d.severity === 'error').length;
  return { diagnostics: out, errors, warnings: out.length - errors, rules: rules.length };
}
