import type { CliContext } from '../context.js';
import { runInvocation } from '../../client/run-invocation.js';
import { brokerSession } from '../../auth/broker-session.js';

/** `guard-aws [--] <aws args…>`: wires process objects into the run path (src/client/run-invocation.ts). */
export async function runAws(argv: string[], ctx: CliContext): Promise<number> {
  return runInvocation(argv, {
    host: ctx.host,
    env: ctx.env,
    cwd: ctx.cwd,
    session: (options) => brokerSession({ flag: options.broker, env: ctx.env }),
    // A terminal stays a terminal for aws (prompts, paging off anyway); a pipe is passed through.
    stdin: process.stdin.isTTY ? 'inherit' : process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    tty: process.stdout.isTTY ? { columns: process.stdout.columns ?? 80 } : null,
    signals: process,
  });
}
