import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { explainInvocation } from '../../src/client/explain.js';
import { modelIndex } from '../../src/invocation/model.js';

// `guard-aws explain --json` (and MCP aws_explain) say where a call would run under `execution: auto`, and why.
const base = {
  argv: ['dynamodb', 'describe-table', '--table-name', 'Orders'],
  cliVersion: modelIndex('v1').cliVersion,
  caller: { subject: 'alice', groups: ['developers'] },
  target: { name: 'dev', account: '123456789012', region: 'us-east-1' },
  cwd: process.cwd(),
  env: {},
};

describe('explain: execution', () => {
  it('the shipped policy has parameter and risk rules: auto runs the call on the broker, naming the rules', async () => {
    const e = await explainInvocation({ ...base, policies: [] });
    expect(e.execution.mode).toBe('auto');
    expect(e.execution.where).toBe('broker');
    expect(e.execution.reasons[0]).toMatch(/broker's own config decides/);
    expect(e.execution.reasons.slice(1).every((r) => /^rule \S+ .* depends on /.test(r))).toBe(true);
  });
  it('a policy of actions and resources only: auto would hand out credentials', async () => {
    const e = await explainInvocation({ ...base, policies: [join(__dirname, '../broker/helpers/broker-policy.yaml')] });
    expect(e.execution.where).toBe('local');
  });
});
