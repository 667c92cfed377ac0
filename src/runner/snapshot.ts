import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GuardError } from '../errors.js';
import { expandPath } from '../invocation/values.js';

/**
 * Pins the files an invocation reads through `file://`/`fileb://` values to the exact bytes the broker decided on.
 *
 * Without this, aws would read each file again when it runs: a caller could swap, say, a bucket policy between the
 * decision and the call, and the session policy (which allows s3:PutBucketPolicy on that bucket) would not stop
 * the swapped, public policy — a time-of-check/time-of-use hole (docs/aws-cli-parsing.md §1, step 5). It also keeps
 * `~` and `$VAR` meaning what they meant to the caller, since aws runs with a private HOME and no caller variables.
 *
 * Each referenced file is copied into a private directory (0700, files 0600) and the token rewritten to point at
 * the copy. A file read that cannot be rewritten (inside shorthand `key@=file://…`) is refused rather than left
 * to be read again.
 */
export interface Snapshot {
  argv: string[];
  dir: string | null;
  cleanup(): void;
}

const PREFIX = /^(file|fileb):\/\/(.+)$/s;

export function snapshotFiles(
  argv: readonly string[],
  read: ReadonlyMap<string, Buffer>,
  ctx: { cwd: string; env: NodeJS.ProcessEnv },
  /** Where the private copies go (the broker: inside the run's own directory); default the OS temp directory. */
  parent: string = tmpdir(),
): Snapshot {
  if (read.size === 0) return { argv: [...argv], dir: null, cleanup: () => undefined };
  const dir = mkdtempSync(join(parent, 'guard-aws-files-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const copies = new Map<string, string>();
    const out = argv.map((tok, i) => {
      const m = PREFIX.exec(tok);
      if (!m) return tok;
      const expanded = expandPath(m[2]!, { account: '', region: '', cwd: ctx.cwd, env: ctx.env }, `argument ${i + 1}`);
      const data = read.get(expanded);
      if (data === undefined) return tok; // not read by the parser (a literal, e.g. a URL-valued parameter)
      let copy = copies.get(expanded);
      if (!copy) {
        copy = join(dir, `${copies.size}-${basename(expanded).replace(/[^\w.-]/g, '_').slice(0, 64) || 'file'}`);
        writeFileSync(copy, data, { mode: 0o600, flag: 'wx' });
        copies.set(expanded, copy);
      }
      return `${m[1]}://${copy}`;
    });
    for (const path of read.keys()) {
      if (!copies.has(path)) {
        throw new GuardError(
          'usage',
          `${path} is read from inside a parameter (key@=file://…); guard-aws can only pin whole-value file:// parameters — pass the file as the parameter's value instead`,
        );
      }
    }
    return { argv: out, dir, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}
