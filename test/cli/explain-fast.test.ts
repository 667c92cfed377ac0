/**
 * `guard-aws explain` reads its common argv shape without commander (issue 14, start-up). That reader must read
 * every argv it accepts exactly as the commander definition does, and hand everything else to commander.
 * Commander is real here: the test parses each argv with explain.ts's definition and compares.
 */
import { describe, expect, it } from 'vitest';
import { command } from '../../src/cli/commands/explain.js';
import { readExplainArgv } from '../../src/cli/commands/explain-run.js';
import type { CliContext } from '../../src/cli/context.js';

const ctx = { host: {} as CliContext['host'], env: {}, cwd: '/', exitCode: 0 } satisfies CliContext;

async function viaCommander(argv: string[]): Promise<{ args: string[]; options: Record<string, unknown> }> {
  let seen: { args: string[]; options: Record<string, unknown> } | undefined;
  const cmd = command(ctx).exitOverride();
  cmd.action((args: string[], options: Record<string, unknown>) => {
    seen = { args, options: { ...options } };
  });
  await cmd.parseAsync(argv, { from: 'user' });
  return seen!;
}

describe('explain without commander', () => {
  const accepted: string[][] = [
    ['--', 's3', 'ls'],
    ['--json', '--', 's3', 'ls'],
    ['--json', '--json', '--', 's3', 'ls'],
    ['--policy', 'a.yaml', '--policy=b.yaml', '--account', '123456789012', '--', 'ec2', 'describe-instances', '--region', 'eu-west-1'],
    ['--region=us-west-2', '--subject', 'bob', '--groups', 'a,b', '--aws-cli', '2', '--target', 'prod', '--', 's3', 'ls', '--profile', 'prod'],
    ['--profile', 'x', '--', 'sts', 'get-caller-identity'],
    ['--account', '111111111111', '--account', '222222222222', '--', 's3', 'ls'],
    ['--policy=', '--subject=a=b', '--', 's3', 'ls'],
    ['--', '--json', '--', '-x'],
  ];
  for (const argv of accepted) {
    it(`reads ${JSON.stringify(argv)} as commander does`, async () => {
      const fast = readExplainArgv(argv);
      expect(fast).toBeDefined();
      expect(fast).toEqual(await viaCommander(argv));
    });
  }

  const refused: string[][] = [
    [],
    ['--'],
    ['s3', 'ls'],
    ['--debug', 's3', 'ls'],
    ['--help', '--', 's3'],
    ['-h'],
    ['--policy'],
    ['--policy', '--', 's3', 'ls'],
    ['--subject', '-x', '--', 's3', 'ls'],
    ['--json=1', '--', 's3', 'ls'],
    ['--jso', '--', 's3', 'ls'],
    ['--json', 's3', 'ls'],
    ['--constructor', 'x', '--', 's3'],
  ];
  for (const argv of refused) {
    it(`leaves ${JSON.stringify(argv)} to commander`, () => {
      expect(readExplainArgv(argv)).toBeUndefined();
    });
  }
});
