import { isBlobStandIn } from '../invocation/values.js';
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

/** Whether one reached value satisfies the condition's operator. */
type Op = (value: unknown) => boolean;

export interface CompiledCondition {
  /** Lower-cased segments. */
  segments: string[];
  /** `exists` conditions are decided on the count of reached values, not per value. */
  exists?: boolean;
  test: Op;
  spec: ConditionSpec;
}

function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return undefined;
}

/** Prefix length of an IPv4 or IPv6 CIDR, or undefined when `value` is not one. */
export function cidrPrefix(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const cidr = /^\s*([0-9A-Fa-f:.]+)\/(\d{1,3})\s*$/.exec(value);
  if (!cidr) return undefined;
  const length = Number(cidr[2]);
  const isV6 = cidr[1]!.includes(':');
  if (length > (isV6 ? 128 : 32)) return undefined;
  return length;
}

export function compileCondition(spec: ConditionSpec, loose: boolean): CompiledCondition {
  const segments = spec.path.split('.').map((segment) => segment.replace(/\[\]$/, '').toLowerCase());
  const text = (value: unknown): string | undefined => {
    const asString = asText(value);
    return asString === undefined ? undefined : loose ? asString.toLowerCase() : asString;
  };
  const norm = (operand: string | number | boolean): string => (loose ? String(operand).toLowerCase() : String(operand));
  let test: Op;
  if (spec.exists !== undefined) {
    test = () => true;
    return { segments, exists: spec.exists, test, spec };
  } else if (spec.equals !== undefined) {
    const want = norm(spec.equals);
    test = (value) => text(value) === want;
  } else if (spec.in !== undefined) {
    const wants = new Set(spec.in.map(norm));
    test = (value) => {
      const actual = text(value);
      return actual !== undefined && wants.has(actual);
    };
  } else if (spec.glob !== undefined) {
    const globs = spec.glob;
    test = (value) => {
      const actual = asText(value);
      return actual !== undefined && globs.some((glob) => wildcardMatch(glob, actual, loose));
    };
  } else if (spec.contains !== undefined) {
    const needle = loose ? spec.contains.toLowerCase() : spec.contains;
    test = (value) => {
      const actual = text(value);
      return actual !== undefined && actual.includes(needle);
    };
  } else if (spec.cidrPrefixMax !== undefined) {
    const max = spec.cidrPrefixMax;
    test = (value) => {
      const prefix = cidrPrefix(value);
      return prefix !== undefined && prefix <= max;
    };
  } else {
    const [compare, bound] =
      spec.lt !== undefined
        ? [(actual: number, limit: number) => actual < limit, spec.lt]
        : spec.le !== undefined
          ? [(actual: number, limit: number) => actual <= limit, spec.le]
          : spec.gt !== undefined
            ? [(actual: number, limit: number) => actual > limit, spec.gt]
            : [(actual: number, limit: number) => actual >= limit, spec.ge!];
    test = (value) => {
      const number = asNumber(value);
      return number !== undefined && compare(number, bound);
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

/** The JSON document a string holds (an object or array), or undefined; decoded once per decision. */
function decodeJson(text: string, scratch: Scratch | undefined): unknown {
  let start = 0;
  while (start < text.length && (text[start] === ' ' || text[start] === '\n' || text[start] === '\r' || text[start] === '\t')) start++;
  if (text[start] !== '{' && text[start] !== '[') return undefined;
  const cached = scratch?.json?.get(text);
  if (cached !== undefined) return cached === NOT_JSON ? undefined : cached;
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch {
    decoded = NOT_JSON;
  }
  if (scratch) (scratch.json ??= new Map()).set(text, decoded);
  return decoded === NOT_JSON ? undefined : decoded;
}

const MAX_DEPTH = 64;

function indexKeys(node: unknown, into: Map<string, unknown[]>, scratch: Scratch, depth: number): void {
  if (depth > MAX_DEPTH) {
    scratch.tooDeep = true;
    return;
  }
  if (typeof node === 'string') {
    const decoded = decodeJson(node, scratch);
    if (decoded !== undefined) indexKeys(decoded, into, scratch, depth + 1);
    return;
  }
  if (Array.isArray(node)) {
    for (const element of node) indexKeys(element, into, scratch, depth + 1);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    const lowerKey = key.toLowerCase();
    let list = into.get(lowerKey);
    if (!list) into.set(lowerKey, (list = []));
    list.push(value);
    indexKeys(value, into, scratch, depth + 1);
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
function lookThrough(node: unknown, segments: string[], at: number, visit: (value: unknown) => boolean, depth: number, scratch?: Scratch): boolean | undefined {
  if (typeof node === 'string') {
    const decoded = decodeJson(node, scratch);
    return decoded === undefined ? false : walk(decoded, segments, at, visit, depth + 1, scratch);
  }
  if (Array.isArray(node)) {
    for (const element of node) if (walk(element, segments, at, visit, depth + 1, scratch)) return true;
    return false;
  }
  return undefined;
}

/** Calls `visit` on every value `segments[at..]` reaches from `node`; stops early when `visit` returns true. */
function walk(node: unknown, segments: string[], at: number, visit: (value: unknown) => boolean, depth: number, scratch?: Scratch): boolean {
  // Too deep to inspect: stop as if the visitor had hit — a restrictive rule then matches and an allow rule
  // (whose visitor reports failures) does not. API parameters are never nested this deep.
  if (depth > MAX_DEPTH) return true;
  if (at < segments.length && segments[at] === '**') {
    // Zero levels first (the rest of the path applies here, or this value is the leaf), then any deeper level.
    if (walk(node, segments, at + 1, visit, depth + 1, scratch)) return true;
    const through = lookThrough(node, segments, at, visit, depth, scratch);
    if (through !== undefined) return through;
    if (node === null || typeof node !== 'object') return false;
    const obj = node as Record<string, unknown>;
    for (const key of Object.keys(obj)) if (walk(obj[key], segments, at, visit, depth + 1, scratch)) return true;
    return false;
  }
  if (at === segments.length) {
    if (Array.isArray(node)) {
      for (const element of node) if (walk(element, segments, at, visit, depth + 1, scratch)) return true;
      return false;
    }
    return visit(node);
  }
  const through = lookThrough(node, segments, at, visit, depth, scratch);
  if (through !== undefined) return through;
  if (node === null || typeof node !== 'object') return false;
  const segment = segments[at]!;
  const obj = node as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (segment === '*' || key.toLowerCase() === segment) {
      if (walk(obj[key], segments, at + 1, visit, depth + 1, scratch)) return true;
    }
  }
  return false;
}

/** Visits what the path reaches; `**.Name…` paths start from the key index instead of walking everything. */
function reach(condition: CompiledCondition, root: unknown, visit: (value: unknown) => boolean, scratch: Scratch | undefined): boolean {
  const segments = condition.segments;
  if (scratch && segments.length >= 2 && segments[0] === '**' && segments[1] !== '*' && segments[1] !== '**') {
    const index = keyIndex(root, scratch);
    if (scratch.tooDeep) return walk(root, segments, 0, visit, 0, scratch);
    const hits = index.get(segments[1]!);
    if (!hits) return false;
    for (const hit of hits) if (walk(hit, segments, 2, visit, 1, scratch)) return true;
    return false;
  }
  return walk(root, segments, 0, visit, 0, scratch);
}

const always = () => true;

/**
 * Evaluates a condition against a params/globals object with the any/all semantics described above. A blob the
 * decision saw only as its digest (isBlobStandIn: a large `fileb://` value) could hold anything: for a
 * restrictive rule it satisfies every operator, for an allow rule none, so a rule about a blob's contents
 * refuses (or asks for approval of) such a call rather than deciding on bytes it never saw. `exists` does not
 * depend on the contents and is decided as usual.
 */
export function evalCondition(condition: CompiledCondition, root: unknown, loose: boolean, scratch?: Scratch): boolean {
  if (condition.exists !== undefined) return reach(condition, root, always, scratch) === condition.exists;
  if (loose) return reach(condition, root, (value) => isBlobStandIn(value) || condition.test(value), scratch);
  let reached = 0;
  const failed = reach(
    condition,
    root,
    (value) => {
      reached++;
      return isBlobStandIn(value) || !condition.test(value);
    },
    scratch,
  );
  return !failed && reached > 0;
}
