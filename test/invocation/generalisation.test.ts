/**
 * Unseen invocations across all services: for every service in the generated model, its first
 * Describe/List/Get operation (and a sample of every operation) must give actions that exist in the
 * Service Authorization Reference, or a clean parse error — never a crash and never an invented action.
 */
import { describe, expect, it } from 'vitest';
import { GuardError } from '../../src/errors.js';
import { actionInfo } from '../../src/invocation/iam-catalog.js';
import { commandModel, modelIndex } from '../../src/invocation/model.js';
import { parseInvocation } from '../../src/invocation/parse.js';

const ctx = { account: '111122223333', region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') };

function check(argv: string[]): 'ok' | 'refused' {
  try {
    const r = parseInvocation(argv, ctx);
    expect(['api', 'custom', 'no_api_call', 'local']).toContain(r.kind);
    if (r.kind === 'api') {
      expect(r.actions.length, argv.join(' ')).toBeGreaterThan(0);
      expect(r.operation).toBeTruthy();
    }
    for (const a of r.actions) expect(actionInfo(a)?.action, `${argv.join(' ')} → ${a}`).toBe(a);
    for (const p of r.permissions) {
      expect(p.resources.length).toBeGreaterThan(0);
      // Not derived: `*`, or (actions with required resource types) the types' patterns in the context's account and
      // region — or the region SAR's template fixes (S3 Multi-Region Access Point requests: `s3:us-west-2:…`).
      if (!p.derived && p.resources[0] !== '*') for (const arn of p.resources) expect(arn, `${argv.join(' ')} → ${p.action}`).toMatch(/^arn:aws:[\w-]+:(us-east-1|us-west-2)?:(111122223333|aws)?:/);
    }
    return 'ok';
  } catch (e) {
    if (!(e instanceof GuardError)) throw new Error(`${argv.join(' ')} crashed: ${(e as Error).stack}`);
    expect(e.code).toBe('parse');
    expect(e.message).not.toMatch(/\n/);
    return 'refused';
  }
}

const services = Object.entries(modelIndex().commands).filter(([, e]) => e.file);

describe('generalisation over the whole CLI model', () => {
  it('has every service of the installed CLI', () => {
    expect(services.length).toBeGreaterThan(400);
  });

  it("each service's first Describe/List/Get operation maps to SAR actions or is refused cleanly", () => {
    let ok = 0;
    for (const [cmd] of services) {
      const m = commandModel(cmd)!;
      const op = m.operationNames().find((o) => /^(describe|list|get)-/.test(o)) ?? m.operationNames()[0]!;
      // streaming-output operations take a positional outfile
      const outfile = m.operation(op)!.args.positionals.length ? ['out.bin'] : [];
      if (check([cmd, op, ...outfile]) === 'ok') ok++;
    }
    console.log(`first read operation of ${services.length} services: ${ok} mapped`);
    expect(ok / services.length).toBeGreaterThan(0.95);
  });

  it('every operation of every service (no arguments) maps or is refused, ≥ 97% mapped', () => {
    let ok = 0;
    let total = 0;
    for (const [cmd] of services) {
      const m = commandModel(cmd)!;
      for (const op of m.operationNames()) {
        total++;
        const outfile = m.operation(op)!.args.positionals.length ? ['out.bin'] : [];
        if (check([cmd, op, ...outfile]) === 'ok') ok++;
      }
    }
    console.log(`all operations: ${ok}/${total} mapped (${((ok / total) * 100).toFixed(1)}%), the rest refused`);
    expect(ok / total).toBeGreaterThan(0.97);
  });
});
