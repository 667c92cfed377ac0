import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Telling a live process from a dead one without being fooled by a reused pid. A stamp names a process by host,
 * boot, pid and the pid's start time (field 22 of /proc/<pid>/stat, in clock ticks since boot; proc(5)): after
 * a reboot the boot id differs, and a pid reused by another process has another start time. Where /proc is not
 * there (macOS), the start time is unknown and only "the pid exists" is checked; the spool's and sandbox's 12 h
 * age limit then covers reuse.
 *
 * Used by the spool (which entries are provably abandoned) and the runner (which temporary HOMEs are stale).
 */
export interface ProcessStamp {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id, when readable. */
  bootId?: string | undefined;
  /** Start time of `pid` in clock ticks since boot, when readable. */
  pidStart?: string | undefined;
}

let bootIdCache: string | undefined | null = null;
export function bootId(): string | undefined {
  if (bootIdCache === null) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      bootIdCache = undefined;
    }
  }
  return bootIdCache;
}

/** Start time of a process (clock ticks since boot), or undefined where /proc cannot tell. */
export function pidStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or ')': fields are counted after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state), so field 22 (starttime) is rest[19].
    const t = rest[19];
    return t && /^\d+$/.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

let selfStamp: ProcessStamp | undefined;
export function currentProcessStamp(): ProcessStamp {
  if (!selfStamp) {
    const b = bootId();
    const st = pidStartTime(process.pid);
    selfStamp = { pid: process.pid, host: hostname(), ...(b ? { bootId: b } : {}), ...(st ? { pidStart: st } : {}) };
  }
  return selfStamp;
}

/**
 * 'alive', 'dead', or 'unknown' (another host: its processes cannot be checked from here). Dead means provably
 * gone: same host and another boot, no such pid, or the pid now belongs to a process started at another time.
 */
export function processState(s: ProcessStamp): 'alive' | 'dead' | 'unknown' {
  if (s.host !== hostname()) return 'unknown';
  const boot = bootId();
  if (s.bootId && boot && s.bootId !== boot) return 'dead';
  if (s.pid === process.pid) return s.pidStart && currentProcessStamp().pidStart && s.pidStart !== currentProcessStamp().pidStart ? 'dead' : 'alive';
  try {
    process.kill(s.pid, 0);
  } catch (e) {
    // EPERM: the process exists but is another user's — alive as far as we can tell.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (s.pidStart) {
    const now = pidStartTime(s.pid);
    if (now !== undefined && now !== s.pidStart) return 'dead';
  }
  return 'alive';
}

/**
 * A compact stamp for a file name: `<host hash>.<boot hash>.<pid>.<start>` (hashes of 8 hex digits; 0 = unknown),
 * so a directory's owner is known from its name alone — no file inside it has to be written first.
 */
export function stampToken(s: ProcessStamp = currentProcessStamp()): string {
  const h = (x: string | undefined) => (x ? createHash('sha256').update(x).digest('hex').slice(0, 8) : '0');
  return `${h(s.host)}.${h(s.bootId)}.${s.pid}.${s.pidStart ?? '0'}`;
}

/** State of the process a stampToken names (parsed from the first four dot-separated fields of `text`). */
export function tokenState(text: string): 'alive' | 'dead' | 'unknown' {
  const [host, boot, pid, start] = text.split('.');
  if (!host || !boot || !pid || !start || !/^\d+$/.test(pid) || !/^\d+$/.test(start)) return 'unknown';
  const me = stampToken();
  const [myHost, myBoot] = me.split('.');
  if (host !== myHost) return 'unknown';
  const n = Number(pid);
  if (boot !== '0' && myBoot !== '0' && boot !== myBoot) return 'dead';
  try {
    process.kill(n, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (start !== '0') {
    const now = pidStartTime(n);
    if (now !== undefined && now !== start) return 'dead';
  }
  return 'alive';
}
