import { closeSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { GuardError } from '../errors.js';
import type { FileSink } from '../api/run-client.js';
import type { LocalFile } from '../invocation/types.js';
import { expandPath } from '../invocation/values.js';

/**
 * The caller's side of a remote run's local files (src/broker/run-files.ts). The broker names argv tokens; the
 * client acts only on tokens its own parse of the same call found as local files of the right kind, so a broker
 * can neither read a file the call does not read nor write outside the paths the call writes.
 */
interface Where {
  cwd: string;
  env: NodeJS.ProcessEnv;
}

function pathOf(argv: readonly string[], token: number, where: Where): string {
  const t = argv[token];
  if (t === undefined) throw new GuardError('broker_unreachable', `the broker named argument ${token}, which the call does not have`);
  return expandPath(t, { account: '', region: '', cwd: where.cwd, env: where.env }, `argument ${token}`);
}

/** The local path of each input token, checked against the client's own parse (mode read). */
export function inputPaths(argv: readonly string[], tokens: readonly number[], localFiles: readonly LocalFile[], where: Where): Map<number, string> {
  const out = new Map<number, string>();
  for (const t of tokens) {
    // A blob sent as its digest is a whole `fileb://` value (src/broker/run-files.ts): the path follows the prefix.
    const tok = argv[t];
    const blob = tok?.startsWith('fileb://') === true;
    const p = blob ? pathOf([tok!.slice('fileb://'.length)], 0, where) : pathOf(argv, t, where);
    if (!localFiles.some((f) => f.mode === 'read' && f.path === p && (f.digest !== undefined) === blob)) {
      throw new GuardError('broker_unreachable', `the broker asked for ${p}, which this call does not read`);
    }
    out.set(t, p);
  }
  return out;
}

/** A name inside a downloaded tree: relative, no `..`, no empty or dot segments, no NUL. */
function safeRelative(name: string): string {
  const parts = name.split('/');
  if (name.startsWith('/') || name.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new GuardError('broker_unreachable', `the broker sent a file named ${JSON.stringify(name.slice(0, 80))}, which is not a plain relative path`);
  }
  return join(...parts);
}

/**
 * Writes the files a remote run produced. Each goes to a temporary file next to its destination and is renamed
 * into place only once complete, so a run that breaks off leaves nothing half-written.
 */
export function outputSink(argv: readonly string[], outputs: readonly { token: number; dir: boolean }[], localFiles: readonly LocalFile[], where: Where): FileSink {
  let open: { fd: number; tmp: string; dest: string } | null = null;
  const destination = (token: number, name: string): string => {
    const spec = outputs.find((o) => o.token === token);
    if (!spec) throw new GuardError('broker_unreachable', `the broker sent a file for argument ${token}, which the call does not write`);
    const base = pathOf(argv, token, where);
    if (!localFiles.some((f) => f.mode === 'write' && f.path === base)) {
      throw new GuardError('broker_unreachable', `the broker sent a file for ${base}, which this call does not write`);
    }
    if (spec.dir) {
      if (name === '') throw new GuardError('broker_unreachable', 'the broker sent a directory download without a file name');
      return join(base, safeRelative(name));
    }
    if (name !== '') throw new GuardError('broker_unreachable', 'the broker sent a named file for a single-file download');
    // `s3 cp s3://b/k DIR/` saves DIR/k's last segment, as aws itself would.
    let isDir = base.endsWith('/');
    try {
      isDir ||= statSync(base).isDirectory();
    } catch {
      /* a new file */
    }
    if (!isDir) return base;
    const source = argv.find((a) => a.startsWith('s3://'));
    const leaf = source ? basename(source.replace(/\/+$/, '')) : '';
    if (!leaf) throw new GuardError('broker_unreachable', `cannot tell which file name to write into ${base}`);
    return join(base, leaf);
  };
  return {
    begin(token, name) {
      if (open) throw new GuardError('broker_unreachable', 'the broker began a file before ending the last one');
      const dest = destination(token, name);
      mkdirSync(dirname(dest), { recursive: true });
      const tmp = join(dirname(dest), `.${basename(dest)}.guard-aws-${randomBytes(6).toString('hex')}.part`);
      try {
        open = { fd: openSync(tmp, 'wx', 0o644), tmp, dest };
      } catch (e) {
        throw new GuardError('local_io', `cannot write ${dest}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    },
    data(chunk) {
      if (!open) throw new GuardError('broker_unreachable', 'the broker sent file data outside a file');
      try {
        writeSync(open.fd, chunk);
      } catch (e) {
        throw new GuardError('local_io', `cannot write ${open.dest}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    },
    end() {
      if (!open) throw new GuardError('broker_unreachable', 'the broker ended a file it never began');
      const f = open;
      open = null;
      closeSync(f.fd);
      renameSync(f.tmp, f.dest);
    },
    abort() {
      if (!open) return;
      closeSync(open.fd);
      rmSync(open.tmp, { force: true });
      open = null;
    },
  };
}
