import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { cacheDir } from '../config/paths.js';
import { VERSION } from '../version.js';
import type { PolicySet } from './compiled.js';
import { policyInvalid, type Diagnostic } from './diagnostics.js';
import { mergeSpecs, type FileSpec } from './merge.js';

/**
 * A start-up cache for the client: the validated form of each policy file, keyed by a hash of the guard-aws
 * version and the file's exact bytes, so a command that decides one call does not load the YAML parser and
 * the schema library (together most of guard-aws's start-up). On any miss the full loader runs (and refills
 * the cache). The broker does not use this: it loads policies once per process with `loadPolicies`.
 * `GUARD_AWS_NO_POLICY_CACHE=1` turns it off.
 */

export interface CachedLoadOptions {
  readFile?: (path: string) => Buffer | string;
  env?: NodeJS.ProcessEnv;
  /** Cache directory; `false` disables the cache. Default: $GUARD_AWS_CACHE_DIR, $XDG_CACHE_HOME/guard-aws or ~/.cache/guard-aws. */
  cacheDir?: string | false;
}

// 2: policy keys are camelCase (a cached spec of format 1 has snake_case keys).
const FORMAT = 2;

export function policyCacheDir(env: NodeJS.ProcessEnv): string | false {
  if (env.GUARD_AWS_NO_POLICY_CACHE === '1') return false;
  // Without any of these there is no cache rather than one in a guessed home directory.
  // (Relative values count as unset, as config/paths.ts reads them.)
  if (![env.GUARD_AWS_CACHE_DIR, env.XDG_CACHE_HOME, env.HOME].some((v) => v && isAbsolute(v))) return false;
  return join(cacheDir(env), 'policies');
}

/**
 * Cache file name: two 32-bit FNV-1a hashes of version, path, the text's length and its first and last 1 KiB. They
 * only spread entries over file names; an entry is used only when the text it stores equals the file's text
 * exactly, so a collision (an edit in the middle that keeps the length) costs a miss, never a wrong policy. Hashing
 * the whole text cost about a millisecond of start-up per call on a 14 KB policy (issue 14); loading node:crypto
 * would cost more than the cache saves here.
 */
function keyOf(path: string, text: string): string {
  const sample = text.length <= 2048 ? text : `${text.slice(0, 1024)}\0${text.slice(-1024)}`;
  const s = `guard-aws ${VERSION} policy cache ${FORMAT}\0${path}\0${text.length}\0${sample}`;
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

interface CacheEntry extends FileSpec {
  text: string;
}

function isEntry(x: unknown, path: string, text: string): x is CacheEntry {
  const f = x as CacheEntry;
  return !!f && f.path === path && f.text === text && typeof f.spec === 'object' && Array.isArray(f.spec?.rules) && Array.isArray(f.rulePos) && f.rulePos.length === f.spec.rules.length && Array.isArray(f.idPos) && typeof f.defaultLine === 'number';
}

/** `loadPolicies` with the start-up cache. Same result and errors as `loadPolicies`. */
export async function loadPoliciesCached(paths: string[], opts: CachedLoadOptions = {}): Promise<PolicySet> {
  const dir = opts.cacheDir ?? policyCacheDir(opts.env ?? process.env);
  const read = opts.readFile ?? readFileSync;
  const specs: FileSpec[] = [];
  const misses: { path: string; key: string | null }[] = [];
  const texts = new Map<string, string>();
  for (const path of paths) {
    let text: string;
    try {
      const raw = read(path);
      text = typeof raw === 'string' ? raw : raw.toString('utf8');
      texts.set(path, text);
    } catch {
      misses.push({ path, key: null }); // the full loader reports the read error
      continue;
    }
    const key = dir ? keyOf(path, text) : null;
    if (dir && key) {
      try {
        const cached = JSON.parse(readFileSync(join(dir, `${key}.json`), 'utf8')) as unknown;
        if (isEntry(cached, path, text)) {
          specs.push(cached);
          continue;
        }
      } catch {
        /* not cached yet */
      }
    }
    misses.push({ path, key });
  }
  if (misses.length === 0) {
    const merged = mergeSpecs(paths, specs, []);
    const errors: Diagnostic[] = merged.diagnostics.filter((d) => d.severity === 'error');
    if (!merged.set || errors.length) throw policyInvalid(errors);
    return merged.set;
  }
  const { loadPoliciesDetailed } = await import('./load.js');
  const r = loadPoliciesDetailed(paths, { readFile: read });
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (!r.set || errors.length) throw policyInvalid(errors);
  if (dir) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const m of misses) {
        const spec = r.specs.find((s) => s.path === m.path);
        if (!spec || !m.key) continue;
        const tmp = join(dir, `${m.key}.${process.pid}.tmp`);
        writeFileSync(tmp, JSON.stringify({ ...spec, text: texts.get(m.path) }), { mode: 0o600 });
        renameSync(tmp, join(dir, `${m.key}.json`));
      }
    } catch {
      /* a cache that cannot be written only costs speed */
    }
  }
  return r.set;
}
