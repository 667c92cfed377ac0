/**
 * Globs as IAM writes them: `*` matches any run of characters (including none), `?` exactly one character,
 * everything else itself (IAM User Guide, "IAM JSON policy elements: Action" and "Resource": wildcards).
 * Compiled once to anchored RegExps so matching in the decision hot path is a single `test`.
 */

/** Inputs longer than this are never matched by a regular expression (IAM's own ARN limit is 2,048). */
export const MAX_MATCH_INPUT = 4096;

function escapeRegex(ch: string): string {
  return /[\\^$.|+()[\]{}*?/]/.test(ch) ? `\\${ch}` : ch;
}

/** Source of an anchored-free regex for one glob; consecutive `*` collapse so backtracking stays linear-ish. */
export function globSource(glob: string): string {
  let out = '';
  let prevStar = false;
  for (const ch of glob) {
    if (ch === '*') {
      if (!prevStar) out += '[\\s\\S]*';
      prevStar = true;
      continue;
    }
    prevStar = false;
    out += ch === '?' ? '[\\s\\S]' : escapeRegex(ch);
  }
  return out;
}

/** One RegExp matching any of `globs` in full. */
export function compileGlobs(globs: readonly string[], caseInsensitive: boolean): RegExp {
  const body = globs.map(globSource).join('|');
  return new RegExp(`^(?:${body})$`, caseInsensitive ? 'iu' : 'u');
}

export function hasWildcard(s: string): boolean {
  return s.includes('*') || s.includes('?');
}

const lower = (s: string, ci: boolean): string => (ci ? s.toLowerCase() : s);

/**
 * Classic iterative wildcard match (backtracks only to the last `*`), O(|p|·|s|) worst case with no
 * allocation beyond lower-casing. Used where inputs come from the caller (parameter values) and can be long.
 */
export function wildcardMatch(pattern: string, input: string, caseInsensitive: boolean): boolean {
  const p = lower(pattern, caseInsensitive);
  const s = lower(input, caseInsensitive);
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star !== -1) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * Does glob `outer` match every string `inner` (itself a glob) can stand for? Sound, not complete: an inner
 * `*` must be absorbed by an outer `*`, an inner `?` by an outer `?` or `*`. Used to decide whether an allow
 * rule covers a wildcard resource such as `arn:aws:s3:::bucket/tmp/*` — "not sure" answers no.
 */
export function globCovers(outer: string, inner: string, caseInsensitive: boolean): boolean {
  const p = lower(outer, caseInsensitive);
  const r = lower(inner, caseInsensitive);
  // reach[j] after processing p[0..i): can p[0..i) cover r[0..j)?
  let reach = new Uint8Array(r.length + 1);
  reach[0] = 1;
  for (let i = 0; i < p.length; i++) {
    const next = new Uint8Array(r.length + 1);
    const pc = p[i]!;
    if (pc === '*') {
      // `*` absorbs any suffix run of r, wildcards included.
      let on = 0;
      for (let j = 0; j <= r.length; j++) {
        if (reach[j]) on = 1;
        next[j] = on;
      }
    } else {
      for (let j = 0; j < r.length; j++) {
        if (!reach[j]) continue;
        const rc = r[j]!;
        if (rc === '*') continue; // only an outer `*` can absorb an inner `*`
        if (pc === '?' || pc === rc) next[j + 1] = 1;
      }
    }
    reach = next;
  }
  return reach[r.length] === 1;
}

/**
 * Can some string be matched by both globs? Exact for `*`/`?` globs over an unbounded alphabet. Used for
 * restrictive rules: a deny on `arn:aws:s3:::b/secret/*` touches a request for `arn:aws:s3:::b/*`.
 */
export function globsIntersect(a: string, b: string, caseInsensitive: boolean): boolean {
  const p = lower(a, caseInsensitive);
  const q = lower(b, caseInsensitive);
  const w = q.length + 1;
  const seen = new Uint8Array((p.length + 1) * w);
  const stack: number[] = [0, 0];
  while (stack.length) {
    const j = stack.pop()!;
    const i = stack.pop()!;
    const k = i * w + j;
    if (seen[k]) continue;
    seen[k] = 1;
    if (i === p.length && j === q.length) return true;
    const pc = p[i];
    const qc = q[j];
    if (pc === '*') {
      stack.push(i + 1, j); // * matches nothing more
      if (qc !== undefined) stack.push(i, j + 1); // * eats what q produces next (a char, or all of q's *)
    }
    if (qc === '*') {
      stack.push(i, j + 1);
      if (pc !== undefined) stack.push(i + 1, j);
    }
    if (pc !== undefined && qc !== undefined && pc !== '*' && qc !== '*') {
      if (pc === '?' || qc === '?' || pc === qc) stack.push(i + 1, j + 1);
    }
  }
  return false;
}
