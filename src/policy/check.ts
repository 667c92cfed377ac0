import { closeMatches } from '../invocation/choices.js';
import { actionInfo, actionsForPrefix, allServicePrefixes, isKnownServicePrefix } from '../invocation/iam-catalog.js';
import { CLI_TABLES, commandModel, modelIndex } from '../invocation/model.js';
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
  if (glob === '*') return allServicePrefixes().flatMap((prefix) => actionsForPrefix(prefix));
  const colon = glob.indexOf(':');
  const prefixGlob = glob.slice(0, colon);
  const nameGlob = glob.slice(colon + 1);
  const prefixes = hasWildcard(prefixGlob)
    ? allServicePrefixes().filter((prefix) => wildcardMatch(prefixGlob, prefix, true))
    : isKnownServicePrefix(prefixGlob)
      ? [prefixGlob.toLowerCase()]
      : [];
  const out: string[] = [];
  for (const prefix of prefixes) {
    if (!hasWildcard(nameGlob)) {
      const info = actionInfo(`${prefix}:${nameGlob}`);
      if (info) out.push(info.action);
      continue;
    }
    for (const action of actionsForPrefix(prefix)) if (wildcardMatch(nameGlob, action.slice(action.indexOf(':') + 1), true)) out.push(action);
  }
  return out;
}

function rulePos(file: ParsedPolicyFile | undefined, rule: CompiledRule, field: PropertyKey[]): { line: number; col: number } {
  if (!file) return { line: rule.line, col: rule.col };
  return positionOf(file.source, ['rules', rule.srcIndex, ...field]);
}

function checkActions(rule: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  const match = rule.spec.match;
  const report = (field: PropertyKey[], message: string, severity: Diagnostic['severity'] = 'error') =>
    out.push({ file: rule.file, ...rulePos(file, rule, ['match', ...field]), severity, message: `rule \`${rule.id}\`: ${message}` });

  let candidates: Set<string> | null = null;
  if (match.actions) {
    candidates = new Set();
    match.actions.forEach((glob, index) => {
      const colon = glob.indexOf(':');
      if (colon > 0 && !hasWildcard(glob.slice(0, colon)) && !isKnownServicePrefix(glob.slice(0, colon))) {
        report(['actions', index], `unknown service prefix in \`${glob}\``);
        return;
      }
      const known = knownActionsFor(glob);
      if (known.length === 0) report(['actions', index], `\`${glob}\` matches no action in the Service Authorization Reference`);
      for (const action of known) candidates!.add(action);
    });
  }
  const excluded = new Set<string>();
  match.notActions?.forEach((glob, index) => {
    const known = knownActionsFor(glob);
    if (known.length === 0) report(['notActions', index], `\`${glob}\` matches no action in the Service Authorization Reference`, 'warning');
    for (const action of known) excluded.add(action);
  });
  if (candidates && candidates.size > 0) {
    for (const action of excluded) candidates.delete(action);
    if (candidates.size === 0) {
      report(['notActions'], 'can never match: notActions excludes every action the rule names');
      return;
    }
    if (match.access) {
      const levels = new Set(match.access);
      const left = [...candidates].filter((action) => {
        const level = actionInfo(action)?.accessLevel;
        return level !== undefined && levels.has(level);
      });
      if (left.length === 0) report(['access'], `can never match: none of the actions has access level ${match.access.join(' or ')}`);
    }
  }
}

/**
 * CLI sub-commands of a command (operations, customizations, `wait`, `help`) in either AWS CLI's table (a rule
 * may be written for v1 or v2 callers: `ddb select` exists only in v2), or undefined when neither has it.
 */
function subcommandsOf(command: string): string[] | undefined {
  let out: string[] | undefined;
  for (const table of CLI_TABLES) {
    const commands = modelIndex(table).commands;
    if (!Object.prototype.hasOwnProperty.call(commands, command)) continue;
    const entry = commands[command]!;
    out ??= ['help'];
    out.push(...Object.keys((entry.custom as { sub?: Record<string, unknown> } | undefined)?.sub ?? {}));
    const model = entry.file ? commandModel(command, table) : undefined;
    if (model) out.push(...model.operationNames(), ...Object.keys(model.custom), 'wait');
  }
  return out && [...new Set(out)];
}

const allCommands = (): string[] => [...new Set(CLI_TABLES.flatMap((table) => Object.keys(modelIndex(table).commands)))];

/** ` (maybe you meant: ls)` when a mistyped name is close to real ones (src/invocation/choices.ts). */
function didYouMean(word: string, choices: Iterable<string>): string {
  const suggestions = closeMatches(word, choices);
  return suggestions.length ? ` (maybe you meant: ${suggestions.join(', ')})` : '';
}

function checkCommands(rule: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  rule.spec.match.commands?.forEach((glob, index) => {
    const [word, subcommand, ...rest] = glob.trim().split(/\s+/);
    const report = (message: string): void => {
      out.push({ file: rule.file, ...rulePos(file, rule, ['match', 'commands', index]), severity: 'error', message: `rule \`${rule.id}\`: ${message}` });
    };
    if (!word || hasWildcard(word)) return;
    const subcommands = subcommandsOf(word);
    if (!subcommands) return report(`\`${word}\` is not an aws command, so \`${glob}\` can never match${didYouMean(word, allCommands())}`);
    if (rest.length) return report(`\`${glob}\` has more than a command and a sub-command, so it can never match`);
    if (subcommand !== undefined && !subcommands.some((name) => wildcardMatch(subcommand, name, true))) {
      const hint = hasWildcard(subcommand) ? '' : didYouMean(subcommand, subcommands);
      report(`\`${word}\` has no sub-command matching \`${subcommand}\`, so \`${glob}\` can never match${hint}`);
    }
  });
}

function checkNeverMatches(rule: CompiledRule, file: ParsedPolicyFile | undefined, out: Diagnostic[]): void {
  const match = rule.spec.match;
  const report = (field: PropertyKey[], message: string) =>
    out.push({ file: rule.file, ...rulePos(file, rule, ['match', ...field]), severity: 'error', message: `rule \`${rule.id}\`: ${message}` });
  if (match.kinds && rule.perPermission && match.kinds.every((kind) => kind === 'no_api_call' || kind === 'local')) {
    report(['kinds'], 'can never match: calls of these kinds need no IAM actions, but the rule matches on actions, access or resources');
  }
  match.accounts?.forEach((account, index) => {
    if (!hasWildcard(account) && !/^\d{12}$/.test(account)) report(['accounts', index], `can never match: \`${account}\` is not a 12-digit account id`);
  });
  if (match.risks && match.risksAll === undefined && match.risks.length === 0) report(['risks'], 'can never match: empty risk list');
  const absentAndPresent = (conditions: ConditionSpec[] | undefined, field: string) =>
    conditions?.forEach((condition, index) => {
      const path = condition.path.toLowerCase();
      if (condition.exists === false && conditions.some((other, otherIndex) => otherIndex !== index && other.path.toLowerCase() === path && other.exists !== false)) {
        report([field, index], `can never match: \`${condition.path}\` must both be absent and satisfy another condition`);
      }
    });
  absentAndPresent(match.params, 'params');
  absentAndPresent(match.globals, 'globals');
}

// ─── Shadowing ───────────────────────────────────────────────────────────────────────────────────────────────

function listCovered(outer: string[] | undefined, inner: string[] | undefined, ci: boolean): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((innerGlob) => outer.some((outerGlob) => globCovers(outerGlob, innerGlob, ci)));
}

function subset<T>(outer: readonly T[] | undefined, inner: readonly T[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return inner.every((item) => outer.includes(item));
}

function sameConditions(outer: ConditionSpec[] | undefined, inner: ConditionSpec[] | undefined): boolean {
  if (outer === undefined) return true;
  if (inner === undefined) return false;
  return outer.every((outerCondition) => inner.some((innerCondition) => JSON.stringify(innerCondition) === JSON.stringify(outerCondition)));
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

/** Does `covering`'s approval ask for at least what `covered`'s does (as many approvers, from its groups)? */
function approvalImplied(covering: CompiledRule, covered: CompiledRule): boolean {
  const strict = covering.approval!;
  const lenient = covered.approval!;
  return lenient.count <= strict.count && strict.groups.every((group) => lenient.groups.includes(group));
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
  const files = new Map(loaded.files.map((file) => [file.source.file, file]));
  const rules = loaded.rules;
  for (const rule of rules) {
    checkActions(rule, files.get(rule.file), out);
    checkNeverMatches(rule, files.get(rule.file), out);
    checkCommands(rule, files.get(rule.file), out);
  }
  checkShadowing(rules, files, out);
  out.sort((first, second) => (first.file === second.file ? first.line - second.line || first.col - second.col : paths.indexOf(first.file) - paths.indexOf(second.file)));
  const errors = out.filter((diagnostic) => diagnostic.severity === 'error').length;
  return { diagnostics: out, errors, warnings: out.length - errors, rules: rules.length };
}
