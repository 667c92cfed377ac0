import { spawnSync } from 'node:child_process';
import { closeSync, lchownSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { GuardError } from '../errors.js';
import { isExecutableFile, type AwsBinary } from './find-aws.js';
import type { RunIsolation } from './run-aws.js';

/**
 * OS-level confinement of the aws the broker runs for a caller (SECURITY.md, "Confinement of broker runs").
 *
 * The sealed environment (sandbox.ts) decides what aws is *told*; this decides what it can *reach*. aws runs under
 * bubblewrap (bwrap(1)) in fresh mount, pid, ipc and uts namespaces whose root is an empty tmpfs holding only:
 * read-only system directories (/usr and the /lib, /bin symlinks), the few /etc files TLS, DNS and the dynamic
 * linker read, the aws installation itself, and the run's own directory read-write. No /proc (see below), no
 * /sys, no /run, no /var, no /home, nothing of the broker's (its config, database, signing keys, spool, its own
 * installation). The network namespace is kept: aws has to reach AWS (or moto on loopback in tests).
 *
 * When the broker runs as root, aws runs as an unprivileged uid/gid (default 65534, "nobody"), switched by
 * setpriv(1) inside the sandbox after bwrap has built the mounts: a real host uid with no capabilities, no
 * supplementary groups and no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS: setuid bits are ignored). bwrap as root
 * cannot switch uid itself without a user namespace, and a user namespace would map the inner uid to the
 * broker's root outside — setpriv gives a plainly unprivileged process instead. When the broker is not root, bwrap
 * creates an unprivileged user namespace and aws keeps the broker's uid; the mount namespace is then the only
 * barrier (nothing of the broker's is mounted).
 */

export type IsolationMode = 'bwrap' | 'none';

export interface IsolationConfig {
  mode: IsolationMode;
  /** The uid/gid aws runs as when the broker is root (default 65534/65534). Not root: only the broker's own. */
  runAs?: { uid: number; gid: number } | undefined;
  /** Default: /usr/bin/bwrap, else /usr/local/bin/bwrap. */
  bwrapPath?: string | undefined;
}

export interface IsolationOptions {
  /**
   * Paths that must stay out of the sandbox (the broker's config file, database, signing keys, spool): creating
   * the isolation fails if one of them lies inside a directory it would bind (a misplaced aws installation).
   */
  protect?: string[];
}

/** The `execution.isolation` section of the broker's config (src/broker/config.ts). */
export const isolationConfigSchema = z
  .strictObject({
    mode: z.enum(['bwrap', 'none']).default('bwrap'),
    // 0 would be root again; 4294967295 is (uid_t)-1, "no change" to setresuid(2).
    runAs: z
      .strictObject({
        uid: z.int().min(1).max(4_294_967_294),
        gid: z.int().min(1).max(4_294_967_294),
      })
      .optional(),
    bwrapPath: z
      .string()
      .refine((p) => isAbsolute(p), 'must be an absolute path')
      .optional(),
  })
  .default({ mode: 'bwrap' });

/** What the broker logs (once, at start) when isolation is off. */
export const ISOLATION_NONE_WARNING =
  'execution.isolation.mode is "none": aws runs for callers unconfined, with the broker\'s own file system and user; use only for development';

export const DEFAULT_RUN_AS = { uid: 65534, gid: 65534 } as const;
const BWRAP_CANDIDATES = ['/usr/bin/bwrap', '/usr/local/bin/bwrap'];
const SETPRIV = '/usr/bin/setpriv';

/** Top-level directories that are bound (read-only) when they exist, or recreated as the same symlink. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * /etc, piece by piece: CA certificates and OpenSSL's config (TLS; /etc/ssl/private is deliberately absent), name
 * resolution (resolv.conf, hosts, nsswitch.conf, gai.conf …), the dynamic linker's cache, alternatives symlinks,
 * user and group names (not passwords: no shadow), the local time zone and mime.types (`s3 cp` guesses
 * Content-Type from it, so objects get the same type as an unconfined upload).
 */
const ETC_PIECES = [
  '/etc/ssl/certs',
  '/etc/ssl/openssl.cnf',
  '/etc/ca-certificates.conf',
  '/etc/pki/tls/certs',
  '/etc/pki/ca-trust/extracted',
  '/etc/crypto-policies',
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/host.conf',
  '/etc/nsswitch.conf',
  '/etc/gai.conf',
  '/etc/services',
  '/etc/protocols',
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/alternatives',
  '/etc/passwd',
  '/etc/group',
  '/etc/localtime',
  '/etc/timezone',
  '/etc/mime.types',
  '/etc/os-release',
];

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}


function inside(p: string, dir: string): boolean {
  const r = relative(dir, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

function shebangInterpreter(file: string): string | null {
  let text: string;
  try {
    const fd = openSync(file, 'r');
    try {
      const b = Buffer.alloc(512);
      text = b.subarray(0, readSync(fd, b, 0, 512, 0)).toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  if (!text.startsWith('#!')) return null;
  const first = text.slice(2).split('\n', 1)[0]!.trim().split(/\s+/)[0] ?? '';
  return isAbsolute(first) ? first : null;
}

/**
 * The directories of the aws installation outside the system directories, bound read-only at the same path (a
 * script's shebang and Python's sys.prefix are absolute): the prefix of the real aws (`<prefix>/bin/aws`) and of
 * its interpreter (a pyenv or venv Python's standard library and shared libraries live under its prefix).
 * Official v2 under /usr/local and Debian's under /usr need nothing more.
 */
export function awsInstallRoots(aws: AwsBinary): string[] {
  const roots = new Set<string>();
  const add = (file: string) => {
    const real = realOrSelf(file);
    if (SYSTEM_DIRS.some((d) => inside(real, d))) return;
    roots.add(dirname(dirname(real)));
  };
  add(aws.path);
  const interp = shebangInterpreter(realOrSelf(aws.path));
  if (interp && !interp.endsWith('/env')) add(interp);
  const list = [...roots].sort();
  // A root inside another is covered by it.
  return list.filter((r) => !list.some((o) => o !== r && inside(r, o)));
}

/** A bound directory that is too wide to be an aws installation: the whole file system, a top-level or a home. */
function tooWide(dir: string, protect: string[]): string | null {
  const parts = dir.split(sep).filter(Boolean);
  if (parts.length < 2) return `${dir} is a top-level directory`;
  const home = realOrSelf(homedir());
  if (inside(home, dir)) return `${dir} holds the broker's home directory ${home}`;
  for (const p of protect) {
    const rp = realOrSelf(p);
    if (inside(rp, dir)) return `${dir} holds ${rp}, which must stay out of reach`;
  }
  return null;
}

function findBwrap(configured: string | undefined): string {
  if (configured !== undefined) {
    if (!isAbsolute(configured) || !isExecutableFile(configured)) {
      throw new GuardError('config_invalid', `execution.isolation.bwrapPath ${JSON.stringify(configured)} is not an executable file`);
    }
    return configured;
  }
  const found = BWRAP_CANDIDATES.find(isExecutableFile);
  if (!found) {
    throw new GuardError(
      'config_invalid',
      `execution.isolation.mode is "bwrap" but bubblewrap is not installed (looked for ${BWRAP_CANDIDATES.join(', ')}); install the bubblewrap package`,
    );
  }
  return found;
}

/** Owns a run's directory tree for the uid aws runs as, never following a symlink out of it. */
export function chownTree(dir: string, uid: number, gid: number): void {
  lchownSync(dir, uid, gid);
  const st = lstatSync(dir);
  if (!st.isDirectory()) return;
  for (const name of readdirSync(dir)) chownTree(join(dir, name), uid, gid);
}

interface Layout {
  bwrap: string;
  /** Set when the broker is root: aws runs as this uid/gid via setpriv. */
  runAs: { uid: number; gid: number } | null;
  roots: string[];
}

/** Directories bwrap must create with mode 0755 so that a bind target deeper down is reachable (its default: 0700). */
function ancestors(p: string, made: Set<string>, out: string[]): void {
  const chain: string[] = [];
  for (let d = dirname(p); d !== '/' && !made.has(d); d = dirname(d)) chain.unshift(d);
  for (const d of chain) {
    made.add(d);
    out.push('--perms', '0755', '--dir', d);
  }
}

/** The namespaces and the read-only view of the system and the aws installation, shared by runs and warm supervisors. */
function baseArgs(layout: Layout, made: Set<string>): string[] {
  const a: string[] = [
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    'guard-aws-run',
    // aws dies with the broker (PR_SET_PDEATHSIG on bwrap's child, whose death ends the pid namespace).
    '--die-with-parent',
    // Its own session: no TIOCSTI into a terminal the broker may hold (CVE-2017-5226).
    '--new-session',
  ];
  if (!layout.runAs) a.push('--unshare-user');
  for (const d of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(d);
    } catch {
      continue;
    }
    made.add(d);
    if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(d), d); // same target as on the host (`/bin -> usr/bin`)
    else a.push('--ro-bind', d, d);
  }
  for (const f of ETC_PIECES) {
    if (!exists(f)) continue;
    ancestors(f, made, a);
    a.push('--ro-bind-try', f, f);
  }
  for (const r of layout.roots) {
    ancestors(r, made, a);
    a.push('--ro-bind', r, r);
  }
  // No --proc: /proc/self/environ would hand aws's own environment (the scoped credentials) to any command that
  // reads a local file (`s3 cp /proc/self/environ s3://…`). Python and the CLI run without it.
  a.push('--dev', '/dev');
  // An empty /tmp that aws cannot write to when it runs as another uid (TMPDIR points into the run directory).
  a.push('--size', String(1024 * 1024), '--tmpfs', '/tmp');
  made.add('/tmp');
  return a;
}

function bwrapArgs(layout: Layout, run: { cwd: string } | null, command: string, args: string[]): string[] {
  const made = new Set<string>();
  const a = baseArgs(layout, made);
  if (run) {
    ancestors(run.cwd, made, a);
    a.push('--bind', run.cwd, run.cwd, '--chdir', run.cwd);
  }
  if (layout.runAs) {
    // bwrap needs CAP_DAC_OVERRIDE to enter the run directory (it belongs to the run's user by now, mode 0700);
    // setpriv needs CAP_SETUID/SETGID to switch and CAP_SETPCAP to empty the bounding set. Everything else is
    // dropped by bwrap; these four go with the switch to a non-zero uid (capabilities(7), "Effect of user ID
    // changes on capabilities") and setpriv's --inh-caps/--bounding-set.
    a.push('--cap-drop', 'ALL');
    for (const cap of ['CAP_DAC_OVERRIDE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP']) a.push('--cap-add', cap);
    a.push('--');
    a.push(
      SETPRIV,
      `--reuid=${layout.runAs.uid}`,
      `--regid=${layout.runAs.gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    );
  } else {
    a.push('--cap-drop', 'ALL', '--');
  }
  a.push(command, ...args);
  return a;
}

/**
 * Checks once that bwrap can build this layout and start a process as the configured user (the broker calls
 * `createIsolation` at start, so a host where bubblewrap is missing or unusable — no user namespaces, a seccomp
 * profile that forbids mount — fails then, with the reason, rather than at the first run).
 */
function probe(layout: Layout): void {
  const r = spawnSync(layout.bwrap, bwrapArgs(layout, null, '/usr/bin/true', []), { env: {}, encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n')[0];
    throw new GuardError('config_invalid', `execution.isolation.mode is "bwrap" but ${layout.bwrap} cannot confine a run here: ${why}`);
  }
}

const probed = new Set<string>();

/**
 * The confinement for broker runs (see the top of this file). Create one at broker start (it checks that
 * bubblewrap works) and one per run, or reuse one: `prepare` and `wrap` are called back to back by runAws within
 * one synchronous step, and `wrap` consumes what `prepare` recorded.
 */
export function createIsolation(config: IsolationConfig, aws: AwsBinary, opts: IsolationOptions = {}): RunIsolation {
  if (config.mode === 'none') {
    return { prepare: () => {}, wrap: (command, args) => ({ command, args }) };
  }
  if (config.mode !== 'bwrap') throw new GuardError('config_invalid', `execution.isolation.mode ${JSON.stringify(config.mode)} is not bwrap or none`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const bwrap = findBwrap(config.bwrapPath);
  let runAs: Layout['runAs'] = null;
  if (isRoot) {
    runAs = config.runAs ?? DEFAULT_RUN_AS;
    if (runAs.uid === 0 || runAs.gid === 0) throw new GuardError('config_invalid', 'execution.isolation.runAs must not be root (uid or gid 0)');
    if (!isExecutableFile(SETPRIV)) {
      throw new GuardError('config_invalid', `execution.isolation runs aws as uid ${runAs.uid}, which needs ${SETPRIV} (util-linux); it is missing`);
    }
  } else if (config.runAs && (config.runAs.uid !== process.getuid?.() || config.runAs.gid !== process.getgid?.())) {
    throw new GuardError('config_invalid', 'execution.isolation.runAs needs the broker to run as root (only root can start aws as another user)');
  }
  const protect = opts.protect ?? [];
  const roots = awsInstallRoots(aws);
  for (const r of roots) {
    const why = tooWide(r, protect);
    if (why) throw new GuardError('config_invalid', `the aws installation cannot be confined: ${why}; install the AWS CLI in its own prefix`);
  }
  for (const p of protect) {
    const rp = realOrSelf(p);
    if (SYSTEM_DIRS.some((d) => inside(rp, d)) || ETC_PIECES.some((e) => inside(rp, e))) {
      throw new GuardError('config_invalid', `${rp} lies in a system directory every broker run can read; move it out of ${dirname(rp)}`);
    }
  }
  const layout: Layout = { bwrap, runAs, roots };
  const key = JSON.stringify(layout);
  if (!probed.has(key)) {
    probe(layout);
    probed.add(key);
  }

  let pending: { cwd: string } | null = null;
  return {
    // aws's parent inside the pid namespace is bwrap's init, pid 1 (the masking plugin ties aws to it).
    parentPid: 1,
    prepare({ home, cwd }) {
      if (!isAbsolute(cwd)) throw new GuardError('internal', 'an isolated run needs an absolute working directory');
      const realCwd = realOrSelf(cwd);
      const realHome = realOrSelf(home);
      // The run's directory is the only writable place in the sandbox and is handed to the run's user: it must be
      // the run's own (the private HOME inside it), never the broker's working directory or a system one.
      if (realCwd.split(sep).filter(Boolean).length < 2 || !inside(realHome, realCwd) || realHome === realCwd) {
        throw new GuardError('internal', `an isolated run needs its private HOME inside its own run directory (HOME ${realHome}, run directory ${realCwd})`);
      }
      for (const p of protect) {
        if (inside(realOrSelf(p), realCwd)) throw new GuardError('internal', `the run directory ${realCwd} holds ${realOrSelf(p)}`);
      }
      if (runAs) chownTree(realCwd, runAs.uid, runAs.gid);
      pending = { cwd: realCwd };
    },
    wrap(command, args) {
      const run = pending;
      pending = null;
      if (!run) throw new GuardError('internal', 'isolation.wrap was called without prepare');
      if (!isExecutableFile(bwrap)) throw new GuardError('config_invalid', `bubblewrap (${bwrap}) is gone; broker runs cannot be confined`);
      // The program by its real path: a symlink to aws (e.g. /usr/local/bin/aws) may live where nothing is bound.
      const exe = realOrSelf(command);
      if (!SYSTEM_DIRS.some((d) => inside(exe, d)) && !roots.some((r) => inside(exe, r))) {
        throw new GuardError('config_invalid', `${exe} is outside what a confined run can see (${[...SYSTEM_DIRS, ...roots].join(', ')})`);
      }
      return { command: bwrap, args: bwrapArgs(layout, run, exe, args) };
    },
  };
}

/**
 * The confinement of a warm CLI supervisor (src/runner/warm/pool.ts, SECURITY.md "Warm CLI pool"): the same empty
 * root as a run's — system, /etc pieces, the aws installation, an empty /dev and /tmp, no /proc, its own pid, ipc
 * and uts namespaces — plus the supervisor's script (read-only), the directory of its socket and the root under
 * which the pool's runs get their directories. It keeps uid 0 with exactly the capabilities it needs to turn each
 * forked child into a run's own unprivileged uid (CAP_SETUID, CAP_SETGID, CAP_SETPCAP for the bounding set) and
 * to signal it (CAP_KILL); no CAP_DAC_OVERRIDE, so it cannot enter a run's directory (0700, the run's uid) either.
 * Only when the broker is root: unprivileged, every run would share one uid and could signal or trace another.
 */
export function supervisorConfinement(
  config: IsolationConfig,
  aws: AwsBinary,
  opts: IsolationOptions & { rw: string[]; ro: string[] },
): { command: string; args: (command: string, args: string[]) => string[] } {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) throw new GuardError('config_invalid', 'a confined warm CLI pool needs the broker to run as root (each run gets its own uid)');
  const bwrap = findBwrap(config.bwrapPath);
  const roots = awsInstallRoots(aws);
  const protect = opts.protect ?? [];
  for (const r of roots) {
    const why = tooWide(r, protect);
    if (why) throw new GuardError('config_invalid', `the aws installation cannot be confined: ${why}; install the AWS CLI in its own prefix`);
  }
  for (const d of [...opts.rw, ...opts.ro]) {
    for (const p of protect) {
      if (inside(realOrSelf(p), realOrSelf(d))) throw new GuardError('internal', `${d} holds ${realOrSelf(p)}, which must stay out of reach`);
    }
  }
  const layout: Layout = { bwrap, runAs: config.runAs ?? DEFAULT_RUN_AS, roots };
  return {
    command: bwrap,
    args(command, args) {
      const made = new Set<string>();
      const a = baseArgs(layout, made);
      for (const d of opts.ro) {
        ancestors(d, made, a);
        a.push('--ro-bind', d, d);
      }
      for (const d of opts.rw) {
        ancestors(d, made, a);
        a.push('--bind', d, d);
      }
      a.push('--cap-drop', 'ALL');
      for (const cap of ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_KILL']) a.push('--cap-add', cap);
      a.push('--', realOrSelf(command), ...args);
      return a;
    },
  };
}

/** Whether bubblewrap is installed where createIsolation looks by default. */
export function bwrapAvailable(): boolean {
  return BWRAP_CANDIDATES.some(isExecutableFile);
}
