import { spawn as nodeSpawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { GuardError } from '../errors.js';
import { sensitiveOutputTable, sensitivePathsByOperation } from '../invocation/sensitive-outputs.js';
import { compileMasking, type CompiledMasking } from '../masking/rules.js';
import { StreamMasker } from '../masking/stream-masker.js';
import type { MaskingRules } from '../policy/types.js';
import { assertRunnableArgv } from './argv-guard.js';
import type { AwsBinary } from './find-aws.js';
import { createSandbox, sweepStaleSandboxes, userRunRoot, type Sandbox, type ScopedCredentials } from './sandbox.js';
import { WarmUnavailable, type WarmChild, type WarmLease, type WarmRunner } from './warm/types.js';

export type OutputName = 'stdout' | 'stderr';

/** Where forwarded signals come from: `process` in the CLI, an EventEmitter in tests. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface RunAwsOptions {
  /** From findAws(). */
  aws: AwsBinary;
  /** The canonical, already-decided argv from the broker's grant (without the leading "aws"). */
  argv: string[];
  credentials: ScopedCredentials;
  region: string;
  /** Only from the broker's grant, for test targets (moto): passed as --endpoint-url. */
  endpoint?: string;
  /** Policy files' masking additions (fields and patterns) on top of the built-ins. */
  masking?: Partial<MaskingRules>;
  /**
   * 'inherit' hands aws the caller's own stdin (a terminal stays a terminal, a pipe stays a pipe, so
   * `file:///dev/stdin` works); a file descriptor is handed over the same way; a stream is copied through a
   * socket pair (fine for `s3 cp -`, but `/dev/stdin` cannot be opened on a socket); null = no stdin.
   */
  stdin: 'inherit' | number | Readable | null;
  stdout: Writable;
  stderr: Writable;
  /** Every masked chunk as it is written, with milliseconds since aws was started (the transcript recorder). */
  onChunk?: (stream: OutputName, maskedChunk: Buffer, atMs: number) => void;
  /** The caller's stdout is a terminal this wide: tables are laid out and coloured as plain aws would. */
  tty?: { columns: number } | null;
  /** Working directory for aws (relative file:// paths); default process.cwd(). */
  cwd?: string;
  /** Copied through: TZ only. */
  callerEnv?: NodeJS.ProcessEnv;
  spawn?: typeof nodeSpawn;
  clock?: () => number;
  signals?: SignalSource;
  /** Parent of the private HOME; default this user's `<tmp>/guard-aws-<uid>` (sandbox.ts userRunRoot). */
  tmpRoot?: string;
  /**
   * How aws is confined beyond the sealed environment (the broker's remote runs, SECURITY.md): `prepare` is
   * handed the private HOME and the working directory once they exist (to hand them to the user aws runs as),
   * `wrap` turns the command into the one actually spawned (an isolating launcher in front of aws).
   */
  isolation?: RunIsolation;
  /**
   * A warm CLI pool (src/runner/warm/pool.ts): when it has a supervisor ready, aws runs as a child forked from it
   * (confined by the supervisor's own sandbox and a uid of its own) instead of a fresh process; otherwise, or when
   * that child cannot be set up, fresh as always. Only with a stream or no stdin (broker runs).
   */
  warm?: WarmRunner;
}

/** See RunAwsOptions.isolation. */
export interface RunIsolation {
  /** The pid aws's parent has as aws sees it (a pid namespace renumbers it); default this process's pid. */
  parentPid?: number;
  prepare(dirs: { home: string; cwd: string }): void;
  wrap(command: string, args: string[]): { command: string; args: string[] };
}

export interface RunAwsResult {
  /** aws's own exit code, or 128 + n when it died from signal n. */
  exitCode: number;
  signal?: string;
  /** How aws was started: forked from a warm supervisor, or a fresh process. */
  runner: 'warm' | 'fresh';
}

function isStream(s: RunAwsOptions['stdin']): s is Readable {
  return typeof s === 'object' && s !== null;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long aws gets to act on a signal it received itself before guard-aws forwards it. */
const FORWARD_GRACE_MS = 300;
/** How long output must pause before held complete lines are emitted (see StreamMasker.flushLines). */
const IDLE_FLUSH_MS = 50;

function validEndpoint(url: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
  } catch {
    return false;
  }
}

/**
 * Runs the real aws once, sealed (docs/aws-cli-parsing.md §6.2): absolute path, no shell, an environment built from
 * nothing, a private HOME removed afterwards; stdout and stderr pass through the masker before the caller or
 * the transcript sees a byte. Resolves with aws's exit code; throws GuardError before anything runs when the
 * argv, endpoint, region or masking rules are unacceptable.
 */
export async function runAws(o: RunAwsOptions): Promise<RunAwsResult> {
  const words = assertRunnableArgv(o.argv);
  if (o.endpoint !== undefined && !validEndpoint(o.endpoint)) {
    throw new GuardError('config_invalid', `the grant's endpoint ${JSON.stringify(o.endpoint)} is not an http(s) URL`);
  }
  const { fieldEnums } = sensitiveOutputTable();
  const compiled = compileMasking({
    rules: o.masking,
    knownSecrets: [o.credentials.secretAccessKey, o.credentials.sessionToken],
    fieldEnums,
  });
  const dockerLoginToken =
    (words.service === 'ecr' || words.service === 'ecr-public') && (words.operation === 'get-login-password' || words.operation === 'get-login');
  // A broker run names its run directory; a local run uses this user's own directory under tmp.
  const tmpRoot = o.tmpRoot ?? userRunRoot();
  const sandboxFor = (parentPid: number | undefined): Sandbox =>
    createSandbox({
      aws: o.aws,
      credentials: o.credentials,
      region: o.region,
      extraFields: o.masking?.fields ?? [],
      dockerLoginToken,
      sensitivePaths: words.service ? sensitivePathsByOperation(words.service) : {},
      fieldEnums,
      tty: o.tty ?? null,
      tmpRoot,
      tz: o.callerEnv?.TZ,
      ...(parentPid !== undefined ? { parentPid } : {}),
    });
  const warmable = o.warm && o.cwd !== undefined && (o.stdin === null || isStream(o.stdin)) && !o.tty;
  let lease: WarmLease | null = warmable ? o.warm!.acquire(o.aws) : null;
  // The masking plugin ties aws to its parent: the supervisor when forked from one, bwrap's init (or guard-aws)
  // when fresh.
  let sandbox = sandboxFor(lease ? lease.parentPid : o.isolation?.parentPid);
  // HOMEs of killed runs are removed while this one runs, before it returns.
  const swept = sweepStaleSandboxes(tmpRoot);
  const signals: SignalSource = o.signals ?? process;
  const forwarders = new Map<NodeJS.Signals, () => void>();
  try {
    let warmChild: WarmChild | null = null;
    if (lease) {
      try {
        warmChild = await lease.launch({ argv: endpointArgv(o), env: sandbox.env, cwd: o.cwd!, stdin: isStream(o.stdin) });
      } catch (e) {
        if (!(e instanceof WarmUnavailable)) throw e;
        // Nothing ran: a fresh aws takes the run, with a sandbox of its own.
        lease.release();
        lease = null;
        sandbox.dispose();
        sandbox = sandboxFor(o.isolation?.parentPid);
      }
    }
    if (!warmChild) o.isolation?.prepare({ home: sandbox.home, cwd: o.cwd ?? process.cwd() });
    const r = await spawnSealed(o, compiled, sandbox.env, signals, forwarders, warmChild);
    return { ...r, runner: warmChild ? 'warm' : 'fresh' };
  } finally {
    for (const [sig, fn] of forwarders) signals.off(sig, fn);
    lease?.release();
    sandbox.dispose();
    await swept;
  }
}

function endpointArgv(o: RunAwsOptions): string[] {
  return o.endpoint ? ['--endpoint-url', o.endpoint, ...o.argv] : [...o.argv];
}

function spawnSealed(
  o: RunAwsOptions,
  compiled: CompiledMasking,
  env: Record<string, string>,
  signals: SignalSource,
  forwarders: Map<NodeJS.Signals, () => void>,
  warmChild: WarmChild | null,
): Promise<Omit<RunAwsResult, 'runner'>> {
  const clock = o.clock ?? (() => performance.now());
  const argv = endpointArgv(o);
  const stdinMode = o.stdin === 'inherit' || typeof o.stdin === 'number' ? o.stdin : o.stdin ? 'pipe' : 'ignore';
  const t0 = clock();
  let child: WarmChild;
  if (warmChild) child = warmChild;
  else {
    const launch = o.isolation ? o.isolation.wrap(o.aws.path, argv) : { command: o.aws.path, args: argv };
    child = (o.spawn ?? nodeSpawn)(launch.command, launch.args, {
      env,
      cwd: o.cwd,
      stdio: [stdinMode, 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    }) as unknown as WarmChild;
  }

  return new Promise<Omit<RunAwsResult, 'runner'>>((resolve, reject) => {
    let failure: unknown = null;
    let pendingOutputs = 2;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let settled = false;

    const finish = () => {
      if (settled || exit === null || pendingOutputs > 0) return;
      settled = true;
      if (isStream(o.stdin) && child.stdin) o.stdin.unpipe(child.stdin);
      if (failure) return reject(failure);
      const { code, signal } = exit;
      if (code !== null) return resolve({ exitCode: code });
      const n = signal ? (osConstants.signals as Record<string, number>)[signal] ?? 0 : 0;
      resolve({ exitCode: 128 + n, ...(signal ? { signal } : {}) });
    };

    child.once('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      // A warm supervisor that died mid-run says so itself (GuardError internal): passed on as it is.
      if (e instanceof GuardError) return reject(e);
      reject(
        e.code === 'ENOENT' || e.code === 'EACCES'
          ? new GuardError('aws_not_found', `cannot start ${o.aws.path}: ${e.code}`, { cause: e })
          : new GuardError('internal', `cannot start aws: ${e.code ?? e.message}`, { cause: e }),
      );
    });

    for (const sig of FORWARDED) {
      // A Ctrl-C at a terminal reaches the whole foreground process group: aws has it already. Forwarding at once
      // would hit aws a second time while it handles the first (a Python traceback instead of a clean exit 130).
      // So forward only if aws is still running a moment later — which is also what a signal sent to guard-aws
      // alone needs.
      const fn = () => {
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill(sig);
        }, FORWARD_GRACE_MS).unref();
      };
      forwarders.set(sig, fn);
      signals.on(sig, fn);
    }

    const wire = (name: OutputName, src: Readable | null, dest: Writable) => {
      if (!src) {
        pendingOutputs--;
        return;
      }
      const masker = new StreamMasker(compiled);
      const emit = (b: Buffer) => {
        if (b.length === 0 || failure) return;
        try {
          o.onChunk?.(name, b, clock() - t0);
        } catch (e) {
          // The transcript could not record this output: stop aws rather than run unrecorded, and show the
          // caller nothing the transcript does not hold.
          // A disk that filled up mid-run is named as such (exit 74); anything else is a bug.
          failure =
            e instanceof GuardError && e.code === 'local_io' ? e : new GuardError('internal', `recording aws's ${name} failed`, { cause: e });
          child.kill('SIGTERM');
          return;
        }
        if (!dest.write(b)) {
          src.pause();
          dest.once('drain', () => src.resume());
        }
      };
      // A stream that goes quiet (`logs tail --follow` between events) gets its complete lines out after a short
      // pause instead of keeping them as the masker's look-ahead until more output comes.
      let idle: NodeJS.Timeout | null = null;
      src.on('data', (chunk: Buffer) => {
        emit(masker.push(chunk));
        if (idle) idle.refresh();
        else idle = setTimeout(() => emit(masker.flushLines()), IDLE_FLUSH_MS);
      });
      src.once('end', () => {
        if (idle) clearTimeout(idle);
        emit(masker.end());
        pendingOutputs--;
        finish();
      });
      src.once('error', (e) => {
        if (idle) clearTimeout(idle);
        failure ??= new GuardError('internal', `reading aws's ${name} failed`, { cause: e });
        pendingOutputs--;
        finish();
      });
    };
    wire('stdout', child.stdout, o.stdout);
    wire('stderr', child.stderr, o.stderr);

    if (isStream(o.stdin) && child.stdin) {
      // aws may exit without reading all of stdin: a broken pipe there is not an error.
      child.stdin.on('error', () => {});
      o.stdin.pipe(child.stdin);
    }

    child.once('exit', (code, signal) => {
      exit = { code, signal };
      finish();
    });
  });
}
