import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { isGuardError } from '../errors.js';
import type { InvocationContext, ParsedInvocation } from '../invocation/types.js';
import { decide } from './decide.js';
import { loadPoliciesDetailed, type LoadOptions } from './load.js';
import { MAX_FILE_BYTES, parseYaml, positionOf, toData, zodDiagnostics, type Diagnostic } from './source.js';
import type { Caller, Decision, TargetInfo } from './types.js';

/**
 * Policy test files (`*.test.yaml`), in the spirit of `opa test`: each case is an argv, who runs it and where,
 * and the decision (and rule) the policies under test must give. Parsing is injected so the runner works with
 * the real parser (CLI) and with anything a test wants.
 */

const callerSchema = z.strictObject({ subject: z.string().min(1), groups: z.array(z.string()).default([]) });
const targetSchema = z.strictObject({ name: z.string().min(1), account: z.string().regex(/^\d{12}$/, { error: 'account must be 12 digits' }).optional(), region: z.string().optional() });

const expectSchema = z
  .strictObject({
    decision: z.enum(['allow', 'approve', 'deny']).optional(),
    /** Rule id, or null for "decided by the default effect". Omitted: any rule. */
    rule: z.string().nullable().optional(),
    /** GuardError code when the argv must be refused before any decision (`parse`, `usage`, `unsupported`). */
    error: z.string().min(1).optional(),
    approval: z.strictObject({ groups: z.array(z.string()).optional(), count: z.number().int().min(1).optional() }).optional(),
  })
  .refine((e) => (e.decision === undefined) !== (e.error === undefined), { error: 'expect needs exactly one of `decision` or `error`' });

const caseSchema = z.strictObject({
  name: z.string().min(1).optional(),
  argv: z.array(z.string()),
  caller: callerSchema.optional(),
  target: targetSchema.optional(),
  region: z.string().optional(),
  expect: expectSchema,
});

export const testFileSchema = z.strictObject({
  description: z.string().optional(),
  /** Policy files under test, relative to the test file. */
  policies: z.array(z.string().min(1)).min(1, { error: 'name at least one policy file to test' }),
  context: z.strictObject({ account: z.string().regex(/^\d{12}$/).default('111122223333'), region: z.string().default('us-east-1') }).default({ account: '111122223333', region: 'us-east-1' }),
  caller: callerSchema.default({ subject: 'test-user', groups: [] }),
  target: targetSchema.optional(),
  /** Contents for `file://` arguments, by path relative to the test file; nothing else is read from disk. */
  files: z.record(z.string(), z.string()).default({}),
  cases: z.array(caseSchema).min(1, { error: 'a test file needs at least one case' }),
});

export type ParseFn = (argv: string[], ctx: InvocationContext) => ParsedInvocation;

export interface CaseResult {
  file: string;
  line: number;
  name: string;
  passed: boolean;
  /** What happened: `allow by allow-reads`, `refused (parse): …`. */
  got: string;
  expected: string;
}

export interface TestRunResult {
  cases: CaseResult[];
  /** Problems with the test files or the policies they name (exit 78). */
  diagnostics: Diagnostic[];
  passed: number;
  failed: number;
}

function describeDecision(d: Decision): string {
  const approval = d.approval ? ` (${d.approval.count} of ${d.approval.groups.join(', ') || 'no common group'})` : '';
  return `${d.decision} by ${d.rule ?? 'the default'}${approval}`;
}

export function runPolicyTests(paths: string[], parse: ParseFn, opts: LoadOptions = {}): TestRunResult {
  const read = opts.readFile ?? readFileSync;
  const result: TestRunResult = { cases: [], diagnostics: [], passed: 0, failed: 0 };
  for (const file of paths) {
    let text: string;
    try {
      const raw = read(file);
      text = typeof raw === 'string' ? raw : raw.toString('utf8');
      if (text.length > MAX_FILE_BYTES) throw Object.assign(new Error('too large'), { code: 'EFBIG' });
    } catch (e) {
      result.diagnostics.push({ file, line: 1, col: 1, severity: 'error', message: `cannot read test file (${(e as NodeJS.ErrnoException).code ?? 'read error'})` });
      continue;
    }
    const { source, errors } = parseYaml(file, text);
    if (errors.length) {
      result.diagnostics.push(...errors);
      continue;
    }
    const { data, error } = toData(source);
    if (error) {
      result.diagnostics.push(error);
      continue;
    }
    const parsed = testFileSchema.safeParse(data ?? {});
    if (!parsed.success) {
      result.diagnostics.push(...zodDiagnostics(source, parsed.error));
      continue;
    }
    const spec = parsed.data;
    const dir = dirname(file);
    const policyPaths = spec.policies.map((p) => resolve(dir, p));
    const loaded = loadPoliciesDetailed(policyPaths, opts);
    if (!loaded.set) {
      result.diagnostics.push(...loaded.diagnostics.filter((d) => d.severity === 'error'));
      continue;
    }
    const files = new Map(Object.entries(spec.files).map(([k, v]) => [resolve(dir, k), v]));
    spec.cases.forEach((c, i) => {
      const { line } = positionOf(source, ['cases', i]);
      const name = c.name ?? c.argv.join(' ');
      const caller: Caller = c.caller ?? spec.caller;
      const t = c.target ?? spec.target;
      const target: TargetInfo = { name: t?.name ?? 'default', account: t?.account ?? spec.context.account, ...(t?.region ? { region: t.region } : {}) };
      const ctx: InvocationContext = {
        account: target.account,
        region: c.region ?? target.region ?? spec.context.region,
        cwd: dir,
        env: { HOME: dir },
        readFile: (p: string) => {
          const content = files.get(resolve(dir, p));
          if (content === undefined) throw Object.assign(new Error(`ENOENT: ${p} is not among the test file's \`files\``), { code: 'ENOENT' });
          return Buffer.from(content, 'utf8');
        },
      };
      const e = c.expect;
      const expected = e.error ? `refused (${e.error})` : `${e.decision}${e.rule !== undefined ? ` by ${e.rule ?? 'the default'}` : ''}`;
      let got: string;
      let passed: boolean;
      try {
        const inv = parse(c.argv, ctx);
        const d = decide(loaded.set!, { invocation: inv, caller, target });
        got = describeDecision(d);
        passed =
          e.decision === d.decision &&
          (e.rule === undefined || e.rule === d.rule) &&
          (e.approval?.count === undefined || e.approval.count === d.approval?.count) &&
          (e.approval?.groups === undefined || JSON.stringify([...e.approval.groups].sort()) === JSON.stringify([...(d.approval?.groups ?? [])].sort()));
      } catch (err) {
        if (!isGuardError(err)) throw err;
        got = `refused (${err.code}): ${err.message}`;
        passed = e.error !== undefined && (e.error === err.code || e.error === '*');
      }
      result.cases.push({ file, line, name, passed, got, expected });
      if (passed) result.passed++;
      else result.failed++;
    });
  }
  return result;
}
