import type { Command } from 'commander';
import { GuardError, exitCodeFor, isGuardError, oneLine } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { NodeIoHost } from '../io/node-host.js';
import type { IoHost } from '../io/host.js';
import type { CliContext } from './context.js';
import { VERSION } from '../version.js';

/**
 * guard-aws's own commands. Each module is imported only when its command runs, so start-up stays close to
 * Node's own (the `aws` pass-through path loads no command module but `run`).
 */
type CommandModule = { command(ctx: CliContext): Command };
const COMMANDS: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  explain: { summary: 'show how an aws invocation is parsed and decided', load: () => import('./commands/explain.js') },
  policy: { summary: 'check and test policy files', load: () => import('./commands/policy.js') },
  login: { summary: 'log in with the device flow', load: () => import('./commands/login.js') },
  logout: { summary: 'forget (and revoke) the stored login', load: () => import('./commands/logout.js') },
  whoami: { summary: 'show who you are logged in as', load: () => import('./commands/whoami.js') },
  broker: { summary: 'run the broker', load: () => import('./commands/broker.js') },
  dev: { summary: 'run broker + identity provider + SQLite in one process', load: () => import('./commands/dev.js') },
  shim: { summary: 'install an `aws` shim that routes through guard-aws', load: () => import('./commands/shim.js') },
  approvals: { summary: 'list, show, approve and deny approval requests', load: () => import('./commands/approvals.js') },
  audit: { summary: 'list, replay, verify and export the audit log', load: () => import('./commands/audit.js') },
  mcp: { summary: 'serve the guard to agents as an MCP server (stdio)', load: () => import('./commands/mcp.js') },
};

export function isOwnCommand(first: string | undefined): boolean {
  return first !== undefined && Object.hasOwn(COMMANDS, first);
}

/**
 * The options of the run path (src/client/guard-options.ts reads them), listed in the top-level help because error
 * messages tell people to use them (`re-run with --approval ID`, `--wait SECONDS`, `--broker URL`).
 */
const RUN_OPTIONS: [string, string][] = [
  ['--approval ID', 'run a call that approval request ID approved (once)'],
  ['--wait SECONDS', 'wait this long for an approval (default: until decided on a terminal, check once otherwise)'],
  ['--reason TEXT', 'the reason shown to approvers (asked for on a terminal when missing)'],
  ['--no-input', 'never prompt (also implied by CI or no terminal)'],
  ['--broker URL', 'broker URL (default: $GUARD_AWS_BROKER, then the broker of the last login)'],
  ['--profile NAME', '(anywhere in the aws arguments) the broker target; never passed to aws'],
];

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  const optWidth = Math.max(...RUN_OPTIONS.map(([k]) => k.length));
  return [
    'Usage: guard-aws [run options] [--] <aws arguments…>   run an aws invocation through the guard',
    '       guard-aws <command> [options]',
    '       guard-aws help <aws command…>                   aws\'s own help for that command (through the guard)',
    '',
    'Run options (before the aws command):',
    ...RUN_OPTIONS.map(([k, v]) => `  ${k.padEnd(optWidth)}  ${v}`),
    '',
    'Commands:',
    ...lines,
    '',
    'Run `guard-aws <command> --help` for a command\'s options. Exit codes: see the README.',
  ].join('\n');
}

export async function dispatch(argv: string[], ctx: CliContext): Promise<number> {
  const [first, ...rest] = argv;
  if (first === 'help' && rest.length > 0) {
    // `guard-aws help s3 ls` is `aws s3 ls help`, run through the guard like any other call; `help dev` is ours.
    if (isOwnCommand(rest[0])) return dispatch([rest[0]!, '--help'], ctx);
    const { runAws } = await import('./commands/run.js');
    return runAws([...rest, 'help'], ctx);
  }
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    ctx.host.result(usage());
    return first === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (first === '--version' || first === '-V') {
    ctx.host.result(VERSION);
    return EXIT.OK;
  }
  if (!isOwnCommand(first)) {
    // Everything else is an aws invocation; `--` forces that reading.
    const awsArgv = first === '--' ? rest : argv;
    const { runAws } = await import('./commands/run.js');
    return runAws(awsArgv, ctx);
  }
  // `explain [options] -- <aws arguments…>`, the common shape, is read without commander (explain-run.ts): loading
  // commander is about a sixth of explain's start-up. Any other shape (help, an unknown option) goes on to it.
  if (first === 'explain') {
    const { explainFast } = await import('./commands/explain-run.js');
    if (await explainFast(rest, ctx)) return ctx.exitCode;
  }
  // commander is loaded only for guard-aws's own commands: the aws pass-through path never needs it.
  const [mod, { Command, CommanderError }] = await Promise.all([COMMANDS[first]!.load(), import('commander')]);
  const cmd = mod.command(ctx);
  // A parent named guard-aws makes commander's usage lines read `guard-aws dev [options]`, not `dev [options]`.
  new Command('guard-aws').enablePositionalOptions().addCommand(cmd);
  // Commander copies these settings to sub-commands only when they are created, so apply them to the whole
  // tree: a usage error anywhere must come back here (exit 64), never end the process from inside commander.
  const configure = (c: Command): void => {
    c.exitOverride();
    c.configureOutput({
      writeOut: (s) => ctx.host.result(s.replace(/\n$/, '')),
      writeErr: (s) => ctx.host.error(oneLine(s.replace(/^error: /, ''))),
    });
    c.showHelpAfterError(false);
    for (const sub of c.commands) configure(sub);
  };
  configure(cmd);
  try {
    await cmd.parseAsync(rest, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; anything else is a usage error already printed.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    throw e;
  }
  return ctx.exitCode;
}

/** Renders any error as one line on stderr and returns its exit code. Internals are not shown. */
export function reportError(e: unknown, host: IoHost, env: NodeJS.ProcessEnv = process.env): number {
  if (isGuardError(e)) {
    host.error(oneLine(e.message));
  } else {
    host.error('internal error (a bug in guard-aws); set GUARD_AWS_DEBUG=1 for details');
    // Something that is not an Error (a library rejecting with '' or undefined) still gets a visible detail line.
    if (env.GUARD_AWS_DEBUG) host.error(e instanceof Error ? String(e.stack ?? e) : `non-Error value thrown: ${JSON.stringify(e) ?? String(e)}`);
  }
  return exitCodeFor(e);
}

/**
 * A reader that stops early (`guard-aws … | head`) closes the pipe: end quietly, as Unix tools do on SIGPIPE
 * (exit 128 + 13), instead of dying with a stack trace. An aws still running then gets EPIPE itself and ends; its
 * transcript stays spooled and is recovered as partial.
 */
function quietOnClosedPipes(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

export async function main(argv: string[]): Promise<void> {
  quietOnClosedPipes();
  const noInput = argv.includes('--no-input');
  const host = new NodeIoHost({ noInput });
  const ctx: CliContext = { host, env: process.env, cwd: process.cwd(), exitCode: EXIT.OK };
  let code: number;
  try {
    code = await dispatch(argv, ctx);
  } catch (e) {
    code = reportError(e, host);
  }
  process.exitCode = code;
}

export { GuardError };
