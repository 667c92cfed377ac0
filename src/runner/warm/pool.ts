import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, mkdtempSync, realpathSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { GuardError } from '../../errors.js';
import { packageRoot, type AwsBinary } from '../find-aws.js';
import { warmPoolConfigSchema, type WarmPoolConfig } from './config.js';
import { WarmUnavailable, type WarmChild, type WarmLaunch, type WarmLease, type WarmRunner } from './types.js';
import { chownTree, DEFAULT_RUN_AS, supervisorConfinement, type IsolationConfig } from '../isolation.js';

/**
 * A warm CLI pool (issue 16; SECURITY.md "Warm CLI pool"): per installed CLI, supervisors that have imported the
 * AWS CLI once (src/runner/warm/supervisor.py) and fork one child per broker run. Almost all of a fresh aws's time
 * is Python importing the CLI; a forked child starts with that done.
 *
 * Confinement is the fresh path's, rearranged: the supervisor runs under bubblewrap in the same empty root a run
 * gets (system, the aws installation, no /proc, nothing of the broker's), plus the pool's run root and its socket
 * directory; each child drops to a uid of its own (uidBase + a slot no other live run holds) with no capabilities
 * and no_new_privs before it reads anything of the run, then enters its run directory (0700, owned by that uid).
 * So a run cannot open another run's directory, signal or trace another run (different uid, and without
 * CAP_SYS_PTRACE), or see the broker's files, like a fresh run. Nothing of a run ever passes through the
 * supervisor's memory: the child reads its request (argv, the sealed environment with the scoped credentials)
 * from its own connection after the fork, so a child inherits only the state of the freshly imported CLI.
 */

export { warmPoolConfigSchema, type WarmPoolConfig };

/** Where the supervisor's Python lives: shipped in the package (package.json `files`). */
export function supervisorScript(): string {
  return join(packageRoot(), 'src', 'runner', 'warm', 'supervisor.py');
}

export interface WarmPoolOptions {
  aws: AwsBinary;
  config: WarmPoolConfig;
  isolation: IsolationConfig;
  /** The broker's own files: never bound into a supervisor's sandbox. */
  protect?: string[];
  /** Parent of the pool's run root (execution.runDir or the OS temp directory). */
  runDir?: string;
  /** Live runs at most (execution.maxConcurrent): the number of per-run uids. */
  maxConcurrent: number;
  log?: (e: { level: 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }) => void;
  spawn?: typeof nodeSpawn;
}

interface Fingerprint {
  files: string[];
  stamp: string;
}

function stampOf(files: string[]): string {
  return files
    .map((f) => {
      try {
        const st = statSync(f);
        return `${f}:${st.ino}:${st.size}:${st.mtimeMs}`;
      } catch {
        return `${f}:missing`;
      }
    })
    .join('|');
}

const READY_TIMEOUT_MS = 30_000;
let supervisorSeq = 0;

class Supervisor {
  readonly id = ++supervisorSeq;
  state: 'starting' | 'ready' | 'retiring' | 'dead' = 'starting';
  pid = 0;
  active = 0;
  forks = 0;
  rssKb = 0;
  fingerprint: Fingerprint | null = null;
  readonly sockDir: string;
  readonly sockPath: string;
  readonly ready: Promise<void>;
  private proc: ChildProcess | null = null;
  private readonly exitListeners = new Set<() => void>();

  constructor(private readonly pool: WarmPool) {
    this.sockDir = mkdtempSync(join(tmpdir(), 'guard-aws-warm-sock-'));
    chmodSync(this.sockDir, 0o700);
    this.sockPath = join(this.sockDir, 's');
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  private start(): Promise<void> {
    const { aws } = this.pool.opts;
    const script = supervisorScript();
    const awsReal = realpathSync(aws.path);
    const interp = pythonOf(awsReal);
    const args = [script, this.sockPath, awsReal, ...this.pool.opts.config.preload];
    // The supervisor's environment is a run's without the run: same locale and Python flags (they decide how
    // sys.stdout and sys.stderr are set up, which every child inherits), no credentials, a HOME that does not exist.
    const env: Record<string, string> = {
      PATH: `${dirname(aws.path)}:/usr/bin:/bin`,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: '/nonexistent',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
      PYTHONNOUSERSITE: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
    };
    let command = interp;
    let argv = args;
    if (this.pool.opts.isolation.mode === 'bwrap') {
      const conf = supervisorConfinement(this.pool.opts.isolation, aws, {
        protect: this.pool.opts.protect ?? [],
        rw: [this.sockDir, this.pool.runRoot],
        ro: [script],
      });
      command = conf.command;
      argv = conf.args(interp, args);
    }
    const proc = (this.pool.opts.spawn ?? nodeSpawn)(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    this.proc = proc;
    let errText = '';
    proc.stderr?.on('data', (b: Buffer) => {
      errText = (errText + b.toString('utf8')).slice(-2000);
      for (const line of b.toString('utf8').split('\n')) if (line.trim()) this.pool.log({ level: 'warn', msg: line.trim(), supervisor: this.id });
    });
    return new Promise<void>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        reject(new WarmUnavailable('the warm CLI supervisor did not become ready in time'));
        this.kill();
      }, READY_TIMEOUT_MS);
      timer.unref();
      proc.stdout?.on('data', (b: Buffer) => {
        if (this.state !== 'starting') return;
        buf += b.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          const hello = JSON.parse(buf.slice(0, nl)) as { ready: boolean; pid: number; awscliFile: string; rssKb: number };
          this.pid = hello.pid;
          this.rssKb = hello.rssKb;
          const files = [awsReal, hello.awscliFile];
          this.fingerprint = { files, stamp: stampOf(files) };
          this.state = 'ready';
          resolve();
        } catch {
          reject(new WarmUnavailable('the warm CLI supervisor said something unexpected'));
          this.kill();
        }
      });
      proc.once('error', (e) => {
        clearTimeout(timer);
        this.state = 'dead';
        reject(new WarmUnavailable(`cannot start the warm CLI supervisor: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        const was = this.state;
        this.state = 'dead';
        rmSync(this.sockDir, { recursive: true, force: true });
        if (was === 'starting') {
          reject(new WarmUnavailable(`the warm CLI supervisor exited before it was ready (${code ?? signal}): ${errText.trim().split('\n').pop() ?? ''}`));
        } else if (!this.pool.isClosed && (was === 'ready' || this.active > 0)) {
          this.pool.log({ level: 'error', msg: 'warm CLI supervisor died', supervisor: this.id, exit: code ?? signal, runs: this.active });
        }
        for (const fn of this.exitListeners) fn();
        this.pool.onSupervisorGone(this);
      });
    });
  }

  onExit(fn: () => void): () => void {
    this.exitListeners.add(fn);
    return () => this.exitListeners.delete(fn);
  }

  upToDate(): boolean {
    return !this.fingerprint || stampOf(this.fingerprint.files) === this.fingerprint.stamp;
  }

  /** No new runs; it leaves once its last run has ended (SIGTERM: it drains, then exits). */
  retire(why: string): void {
    if (this.state === 'dead' || this.state === 'retiring') return;
    this.state = 'retiring';
    this.pool.log({ level: 'info', msg: 'warm CLI supervisor replaced', supervisor: this.id, why });
    if (this.active === 0) this.proc?.kill('SIGTERM');
  }

  runEnded(): void {
    this.active--;
    if (this.state === 'retiring' && this.active === 0) this.proc?.kill('SIGTERM');
  }

  kill(): void {
    this.proc?.kill('SIGKILL');
    rmSync(this.sockDir, { recursive: true, force: true });
  }
}

/** The interpreter of an aws script (its shebang); the pool starts the supervisor with it. */
function pythonOf(awsReal: string): string {
  const { readFileSync } = process.getBuiltinModule('node:fs');
  const head = readFileSync(awsReal, { encoding: 'latin1' }).slice(0, 512);
  const m = /^#!\s*(\S+)/.exec(head);
  // The supervisor is Python and imports the CLI with the very interpreter aws names: anything else is no CLI it can warm.
  if (!m || !/\/python[0-9.]*$/.test(m[1]!)) throw new WarmUnavailable(`${awsReal} is not a Python script with an absolute python interpreter`);
  return m[1]!;
}

export class WarmPool implements WarmRunner {
  readonly runRoot: string;
  private readonly supervisors = new Set<Supervisor>();
  private readonly freeSlots: number[];
  private closed = false;
  get isClosed(): boolean {
    return this.closed;
  }
  private disabledWhy: string | null = null;
  readonly opts: WarmPoolOptions;

  constructor(opts: WarmPoolOptions) {
    this.opts = opts;
    // The pool's runs get their directories here: 0711, so a run's uid can reach its own directory by name but
    // list nothing. The supervisor's sandbox binds this, never the whole temp directory.
    this.runRoot = mkdtempSync(join(opts.runDir ?? tmpdir(), 'guard-aws-warm-runs-'));
    chmodSync(this.runRoot, 0o711);
    this.freeSlots = Array.from({ length: opts.maxConcurrent }, (_, i) => i);
    const isRoot = process.getuid?.() === 0;
    if (opts.isolation.mode === 'bwrap' && !isRoot) {
      this.disabledWhy = 'the broker is not root: confined warm runs need a uid each (fresh runs are used)';
      opts.log?.({ level: 'warn', msg: `execution.warmPool: ${this.disabledWhy}` });
    } else if (opts.isolation.mode !== 'bwrap' && isRoot) {
      // Unconfined, a warm child would keep the broker's uid: root. The supervisor refuses that; so does the pool.
      this.disabledWhy = 'execution.isolation.mode is none and the broker is root: warm runs would run as root (fresh runs are used)';
      opts.log?.({ level: 'warn', msg: `execution.warmPool: ${this.disabledWhy}` });
    } else {
      try {
        pythonOf(realpathSync(opts.aws.path));
      } catch (e) {
        this.disabledWhy = (e as Error).message;
        opts.log?.({ level: 'warn', msg: `execution.warmPool: ${this.disabledWhy}` });
      }
    }
    this.fill();
  }

  log(e: { level: 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }): void {
    this.opts.log?.(e);
  }

  /** Why the pool never serves runs, or null. */
  get unavailable(): string | null {
    return this.disabledWhy;
  }

  /** Resolves when every supervisor has started (or failed to): for tests and benchmarks. */
  async ready(): Promise<void> {
    await Promise.allSettled([...this.supervisors].map((s) => s.ready));
  }

  stats(): { supervisors: { id: number; state: string; pid: number; active: number; forks: number }[] } {
    return { supervisors: [...this.supervisors].map((s) => ({ id: s.id, state: s.state, pid: s.pid, active: s.active, forks: s.forks })) };
  }

  private fill(): void {
    if (this.closed || this.disabledWhy) return;
    let live = 0;
    for (const s of this.supervisors) if (s.state === 'starting' || s.state === 'ready') live++;
    for (; live < this.opts.config.size; live++) {
      const s = new Supervisor(this);
      this.supervisors.add(s);
      s.ready.then(
        () => {
          if (s.rssKb > this.opts.config.maxRssMb * 1024) {
            // Already over the ceiling after importing the CLI: every replacement would be too; no pool.
            this.disabledWhy = `a supervisor needs ${Math.round(s.rssKb / 1024)} MB after importing the CLI, more than execution.warmPool.maxRssMb (${this.opts.config.maxRssMb})`;
            this.log({ level: 'error', msg: `execution.warmPool: ${this.disabledWhy}; fresh runs are used` });
            s.retire('memory ceiling');
          }
        },
        (e: unknown) => this.log({ level: 'error', msg: 'warm CLI supervisor did not start', error: (e as Error).message }),
      );
    }
  }

  onSupervisorGone(s: Supervisor): void {
    this.supervisors.delete(s);
    if (this.closed) return;
    // A crashed supervisor is replaced at once (a failing start is retried on the next run, not in a loop).
    if (s.pid !== 0) this.fill();
  }

  /**
   * A supervisor ready for a run, or null: the pool is off or unusable here, every supervisor is starting (after
   * a crash or a recycle), or the aws was upgraded under it. Null means a fresh aws for this run.
   */
  acquire(aws: AwsBinary): WarmLease | null {
    if (this.closed || this.disabledWhy) return null;
    if (realpathOr(aws.path) !== realpathOr(this.opts.aws.path)) return null;
    let best: Supervisor | null = null;
    for (const s of this.supervisors) {
      if (s.state !== 'ready') continue;
      if (!s.upToDate()) {
        s.retire('the AWS CLI changed on disk');
        continue;
      }
      if (!best || s.active < best.active) best = s;
    }
    this.fill();
    if (!best) return null;
    const slot = this.freeSlots.shift();
    if (slot === undefined) return null;
    const sup = best;
    sup.active++;
    sup.forks++;
    const recycle = this.opts.config.recycleAfterRuns;
    if (recycle > 0 && sup.forks >= recycle) {
      sup.retire(`served ${sup.forks} runs (execution.warmPool.recycleAfterRuns)`);
      this.fill();
    }
    // Confined: a uid per live run. Unconfined (isolation none, development only): the broker's own, as fresh runs.
    const who =
      this.opts.isolation.mode === 'bwrap'
        ? { uid: this.opts.config.uidBase + slot, gid: this.opts.config.uidBase + slot }
        : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    if (this.opts.isolation.mode === 'bwrap' && who.uid === DEFAULT_RUN_AS.uid) throw new GuardError('config_invalid', 'execution.warmPool.uidBase gives runs the uid of nobody');
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.freeSlots.push(slot);
      sup.runEnded();
    };
    return {
      parentPid: sup.pid,
      release,
      launch: (o) => launchOn(sup, who, o),
    };
  }

  /** Stops every supervisor (broker shutdown); their running children die with them. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.supervisors) s.kill();
    rmSync(this.runRoot, { recursive: true, force: true });
  }
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function connectTo(path: string, header: object): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('error', (e) => reject(new WarmUnavailable(`cannot reach the warm CLI supervisor: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    s.once('connect', () => {
      s.removeAllListeners('error');
      // Errors (a reset when the supervisor dies) show as the connection closing without an exit event.
      s.on('error', () => {});
      s.write(`${JSON.stringify(header)}\n`);
      resolve(s);
    });
  });
}

class Child extends EventEmitter implements WarmChild {
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  constructor(
    private readonly control: Socket,
    io: { stdin: Socket | null; stdout: Socket; stderr: Socket },
  ) {
    super();
    this.stdin = io.stdin;
    this.stdout = io.stdout;
    this.stderr = io.stderr;
    // Output sockets are read only; stdin is written only (its end() is the EOF aws reads).
    io.stdout.end();
    io.stderr.end();
  }
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exitCode !== null || this.signalCode !== null || this.control.destroyed) return false;
    const n = (osConstants.signals as Record<string, number>)[signal];
    if (!n) return false;
    this.control.write(`${JSON.stringify({ signal: n })}\n`);
    return true;
  }
}

async function launchOn(sup: Supervisor, who: { uid: number; gid: number }, o: WarmLaunch): Promise<WarmChild> {
  if (sup.state === 'dead') throw new WarmUnavailable('the warm CLI supervisor is gone');
  // The run's directory belongs to the run's own uid (0700): no other run, and not the supervisor, can enter it.
  chownTree(o.cwd, who.uid, who.gid);
  const id = randomBytes(16).toString('hex');
  const socks: Socket[] = [];
  try {
    const control = await connectTo(sup.sockPath, { role: 'control', id, stdin: o.stdin });
    socks.push(control);
    const stdout = await connectTo(sup.sockPath, { role: 'stdout', id });
    socks.push(stdout);
    const stderr = await connectTo(sup.sockPath, { role: 'stderr', id });
    socks.push(stderr);
    const stdin = o.stdin ? await connectTo(sup.sockPath, { role: 'stdin', id }) : null;
    if (stdin) socks.push(stdin);
    const umask = process.umask();
    control.write(`${JSON.stringify({ argv: o.argv, env: o.env, cwd: o.cwd, uid: who.uid, gid: who.gid, umask })}\n`);
    const child = new Child(control, { stdin, stdout, stderr });
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let started = false;
      const gone = () => {
        if (!started) reject(new WarmUnavailable('the warm CLI supervisor went away before the run started'));
      };
      const off = sup.onExit(gone);
      const onData = (b: Buffer) => {
        buf += b.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let msg: { event?: string; code?: number; signal?: number; error?: string };
          try {
            msg = JSON.parse(line) as typeof msg;
          } catch {
            continue;
          }
          if (msg.event === 'started') {
            started = true;
            resolve();
          } else if (msg.event === 'setup_failed') {
            reject(new WarmUnavailable(`the warm run could not be set up: ${msg.error ?? 'unknown'}`));
          } else if (msg.event === 'exit') {
            if (typeof msg.signal === 'number') {
              const name = Object.entries(osConstants.signals).find(([, v]) => v === msg.signal)?.[0] as NodeJS.Signals | undefined;
              child.signalCode = name ?? 'SIGKILL';
            } else child.exitCode = msg.code ?? 70;
          }
        }
      };
      control.on('data', onData);
      control.once('close', () => {
        off();
        if (!started) return gone();
        if (child.exitCode === null && child.signalCode === null) {
          // The supervisor died with the run in it: said so, never taken for an exit of aws.
          child.emit('error', new GuardError('internal', 'the warm CLI supervisor died during the run; the call may have partly run'));
        } else child.emit('exit', child.exitCode, child.signalCode);
      });
      control.on('error', () => {});
      for (const s of [stdout, stderr, ...(stdin ? [stdin] : [])]) s.on('error', () => {});
    });
    return child;
  } catch (e) {
    for (const s of socks) s.destroy();
    throw e instanceof WarmUnavailable ? e : new WarmUnavailable((e as Error).message);
  }
}

export { WarmUnavailable, type WarmChild, type WarmLaunch, type WarmLease, type WarmRunner };
