import { wildcardMatch } from './glob.js';
import type { ConditionSpec } from './schema.js';

/**
 * Parameter conditions: a path into `ParsedInvocation.params` (or `.globals`) and one operator.
 *
 * Path: dot-separated API member names, compared case-insensitively (botocore rejects a wrongly-cased member,
 * so the looser comparison can only make a rule match more). `*` is any one key or array element, `**` any
 * number of levels (including none). Arrays are walked implicitly: `IpPermissions.IpRanges.CidrIp` visits every
 * range of every permission; a trailing `[]` on a name is accepted for readability. A string that holds a JSON
 * document (a policy document, say) is decoded when the path continues into it.
 *
 * A path can reach several values. A restrictive rule (deny, approve) matches when ANY reached value satisfies
 * the operator; an allow rule only when at least one value is reached and ALL of them satisfy it — so an
 * uncertain case always falls to the stricter side.
 */

type Op = (v: unknown) => boolean;

export interface CompiledCondition {
  /** Lower-cased segments. */
  segments: string[];
  /** `exists` conditions are decided on the count of reached values, not per value. */
  exists?: boolean;
  test: Op;
  spec: ConditionSpec;
}

function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

/** Prefix length of an IPv4 or IPv6 CIDR, or undefined when `v` is not one. */
export function cidrPrefix(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^\s*([0-9A-Fa-f:.]+)\/(\d{1,3})\s*$/.exec(v);
  if (!m) return undefined;
  const len = Number(m[2]);
  const isV6 = m[1]!.includes(':');
  if (len > (isV6 ? 128 : 32)) return undefined;
  return len;
}

export function compileCondition(spec: ConditionSpec, loose: boolean): CompiledCondition {
  const segments = spec.path.split('.').map((s) => s.replace(/\[\]$/, '').toLowerCase());
  const text = (v: unknown): string | undefined => {
    const t = asText(v);
    return t === undefined ? undefined : loose ? t.toLowerCase() : t;
  };
  const norm = (x: string | number | boolean): string => (loose ? String(x).toLowerCase() : String(x));
  let test: Op;
  if (spec.exists !== undefined) {
    test = () => true;
    return { segments, exists: spec.exists, test, spec };
  } else if (spec.equals !== undefined) {
    const want = norm(spec.equals);
    test = (v) => text(v) === want;
  } else if (spec.in !== undefined) {
    const wants = new Set(spec.in.map(norm));
    test = (v) => {
      const t = text(v);
      return t !== undefined && wants.has(t);
    };
  } else if (spec.glob !== undefined) {
    const globs = spec.glob;
    test = (v) => {
      const t = asText(v);
      return t !== undefined && globs.some((g) => wildcardMatch(g, t, loose));
    };
  } else if (spec.contains !== undefined) {
    const needle = loose ? spec.contains.toLowerCase() : spec.contains;
    test = (v) => {
      const t = text(v);
      return t !== undefined && t.includes(needle);
    };
  } else if (spec.cidrPrefixMax !== undefined) {
    const max = spec.cidrPrefixMax;
    test = (v) => {
      const p = cidrPrefix(v);
      return p !== undefined && p <= max;
    };
  } else {
    const [cmp, bound] =
      spec.lt !== undefined
        ? [(a: number, b: number) => a < b, spec.lt]
        : spec.le !== undefined
          ? [(a: number, b: number) => a <= b, spec.le]
          : spec.gt !== undefined
            ? [(a: number, b: number) => a > b, spec.gt]
            : [(a: number, b: number) => a >= b, spec.ge!];
    test = (v) => {
      const n = asNumber(v);
      return n !== undefined && cmp(n, bound);
    };
  }
  return { segments, test, spec };
}

/**
 * Per-decision scratch space: decoded JSON strings and an index of every key anywhere in the params, so that
 * many `**.Key` conditions cost one walk of the parameters instead of one each. Created lazily by the first
 * condition that needs it and dropped with the decision (never shared across decisions: params could differ).
 */
export interface Scratch {
  json?: Map<string, unknown>;
  /** root object → lower-cased key → values found under that key at any depth. */
  keys?: Map<unknown, Map<string, unknown[]>>;
  /** Some parameters nest deeper than MAX_DEPTH: the index is incomplete, walk instead (which fails closed). */
  tooDeep?: boolean;
}

const NOT_JSON = Symbol('not json');

function decodeJson(s: string, scratch: Scratch | undefined): unknown {
  let i = 0;
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  if (s[i] !== '{' && s[i] !== '[') return undefined;
  const cached = scratch?.json?.get(s);
  if (cached !== undefined) return cached === NOT_JSON ? undefined : cached;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    v = NOT_JSON;
  }
  if (scratch) (scratch.json ??= new Map()).set(s, v);
  return v === NOT_JSON ? undefined : v;
}

const MAX_DEPTH = 64;

function indexKeys(node: unknown, into: Map<string, unknown[]>, scratch: Scratch, depth: number): void {
  if (depth > MAX_DEPTH) {
    scratch.tooDeep = true;
    return;
  }
  if (typeof node === 'string') {
    const d = decodeJson(node, scratch);
    if (d !== undefined) indexKeys(d, into, scratch, depth + 1);
    return;
  }
  if (Array.isArray(node)) {
    for (const el of node) indexKeys(el, into, scratch, depth + 1);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    const lk = k.toLowerCase();
    let list = into.get(lk);
    if (!list) into.set(lk, (list = []));
    list.push(v);
    indexKeys(v, into, scratch, depth + 1);
  }
}

function keyIndex(root: unknown, scratch: Scratch): Map<string, unknown[]> {
  scratch.keys ??= new Map();
  let idx = scratch.keys.get(root);
  if (!idx) {
    idx = new Map();
    indexKeys(root, idx, scratch, 0);
    scratch.keys.set(root, idx);
  }
  return idx;
}

/**
 * Strings holding JSON (policy documents passed as strings) and arrays are transparent to a path: the same
 * segment applies inside them. Undefined when `node` is neither, so the caller goes on with objects.
 */
function lookThrough(node: unknown, segments: string[], i: number, visit: (v: unknown) => boolean, depth: number, sc?: Scratch): boolean | undefined {
  if (typeof node === 'string') {
    const decoded = decodeJson(node, sc);
    return decoded === undefined ? false : walk(decoded, segments, i, visit, depth + 1, sc);
  }
  if (Array.isArray(node)) {
    for (const el of node) if (walk(el, segments, i, visit, depth + 1, sc)) return true;
    return false;
  }
  return undefined;
}

/** Calls `visit` on every value `segments[i..]` reaches from `node`; stops early when `visit` returns true. */
function walk(node: unknown, segments: string[], i: number, visit: (v: unknown) => boolean, depth: number, sc?: Scratch): boolean {
  // Too deep to inspect: stop as if the visitor had hit — a restrictive rule then matches and an allow rule
  // (whose visitor reports failures) does not. API parameters are never nested this deep.
  if (depth > MAX_DEPTH) return true;
  if (i < segments.length && segments[i] === '**') {
    // Zero levels first (the rest of the path applies here, or this value is the leaf), then any deeper level.
    if (walk(node, segments, i + 1, visit, depth + 1, sc)) return true;
    const through = lookThrough(node, segments, i, visit, depth, sc);
    if (through !== undefined) return through;
    if (node === null || typeof node !== 'object') return false;
    const obj = node as Record<string, unknown>;
    for (const k of Object.keys(obj)) if (walk(obj[k], segments, i, visit, depth + 1, sc)) return true;
    return false;
  }
  if (i === segments.length) {
    if (Array.isArray(node)) {
      for (const el of node) if (walk(el, segments, i, visit, depth + 1, sc)) return true;
      return false;
    }
    return visit(node);
  }
  const through = lookThrough(node, segments, i, visit, depth, sc);
  if (through !== undefined) return through;
  if (node === null || typeof node !== 'object') return false;
  const seg = segments[i]!;
  const obj = node as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (seg === '*' || k.toLowerCase() === seg) {
      if (walk(obj[k], segments, i + 1, visit, depth + 1, sc)) return true;
    }
  }
  return false;
}

/** Visits what the path reaches; `**.Name…` paths start from the key index instead of walking everything. */
function reach(c: CompiledCondition, root: unknown, visit: (v: unknown) => boolean, sc: Scratch | undefined): boolean {
  const seg = c.segments;
  if (sc && seg.length >= 2 && seg[0] === '**' && seg[1] !== '*' && seg[1] !== '**') {
    const index = keyIndex(root, sc);
    if (sc.tooDeep) return walk(root, seg, 0, visit, 0, sc);
    const hits = index.get(seg[1]!);
    if (!hits) return false;
    for (const v of hits) if (walk(v, seg, 2, visit, 1, sc)) return true;
    return false;
  }
  return walk(root, seg, 0, visit, 0, sc);
}

const always = () => true;

/** Evaluates a condition against a params/globals object with the any/all semantics described above. */
export function evalCondition(c: CompiledCondition, root: unknown, loose: boolean, sc?: Scratch): boolean {
  if (c.exists !== undefined) return reach(c, root, always, sc) === c.exists;
  if (loose) return reach(c, root, c.test, sc);
  let reached = 0;
  const failed = reach(
    c,
    root,
    (v) => {
      reached++;
      return !c.test(v);
    },
    sc,
  );
  return !failed && reached > 0;
}
