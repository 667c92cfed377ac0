import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import type { CliContext } from '../context.js';
import { brokerOption, intParser, repeatable } from '../options.js';

interface McpCommandOptions {
  broker?: string;
  wait: number;
  maxOutput: number;
  timeout: number;
  policy: string[];
}

/**
 * `guard-aws mcp`: serve the guard's tools to an MCP client over stdio (src/mcp/). Identity comes from the same
 * places as every other command (GUARD_AWS_TOKEN[_FILE], CI tokens, the stored login); stdout is the protocol
 * channel, so diagnostics only ever go to stderr.
 */
export function command(ctx: CliContext): Command {
  return new Command('mcp')
    .description('serve aws_call, aws_explain and approval_status to an MCP client (agents) over stdio')
    .addOption(brokerOption())
    .addOption(new Option('--wait <seconds>', 'longest a call waits for an approval before answering approval_pending').argParser(intParser('--wait', 0, 3600)).default(30))
    .addOption(
      new Option('--max-output <bytes>', 'aws output returned per stream; the rest is counted, not returned')
        .argParser(intParser('--max-output', 1024, 16 * 1024 * 1024))
        .default(64 * 1024),
    )
    .addOption(new Option('--timeout <seconds>', 'stop a call (and withdraw its approval request) after this long').argParser(intParser('--timeout', 1, 86_400)).default(600))
    .addOption(repeatable('--policy <path>', 'policy file aws_explain judges with (repeatable; default: the shipped policies/default.yaml)'))
    .action(async (o: McpCommandOptions) => {
      const { serveStdio } = await import('../../mcp/server.js');
      await serveStdio({
        env: ctx.env,
        cwd: ctx.cwd,
        ...(o.broker !== undefined ? { broker: o.broker } : {}),
        maxWaitSeconds: o.wait,
        maxOutputBytes: o.maxOutput,
        timeoutSeconds: o.timeout,
        policies: o.policy.map((p) => resolve(ctx.cwd, p)),
        ...(ctx.env.GUARD_AWS_MCP_PROGRESS_MS ? { progressIntervalMs: Math.max(100, Number(ctx.env.GUARD_AWS_MCP_PROGRESS_MS) || 5000) } : {}),
      });
      ctx.exitCode = 0;
    });
}
