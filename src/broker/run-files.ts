import { expandPath } from '../invocation/values.js';
import type { BlobDigest, ParsedInvocation } from '../invocation/types.js';
import { ApiError } from '../api/http-error.js';

/**
 * Local files of a call the broker runs. The broker's aws must never touch the broker's own disk on the caller's
 * behalf (`s3 cp /etc/… s3://…` would upload the broker's files, `s3 cp s3://… /var/lib/…` overwrite them), so
 * every local file the parser found (ParsedInvocation.files) is one of:
 * - pinned: a file:// value whose bytes came with the request (written into the run directory);
 * - an input: a single file the call reads (s3 cp/mv upload source, a streaming blob such as `--body`, a large
 *   `fileb://` blob decided on as its digest), streamed from the caller into the run directory before aws starts
 *   (PUT /v1/runs/{id}/inputs/{token});
 * - an output: what the call writes (s3 cp/mv/sync downloads, an OUTFILE), redirected into the run directory and
 *   streamed back to the caller's path as file frames;
 * and its argv token is rewritten to the run directory. Anything else is refused (`run_unsupported`) before any
 * session is issued.
 */
export interface RunFilePlan {
  /** argv token indexes the caller uploads before starting the run. */
  inputs: number[];
  /** argv token indexes aws writes to; `dir`: a directory tree (recursive copy, sync). */
  outputs: { token: number; dir: boolean }[];
  /**
   * Inputs that are blobs decided on as a digest only (InvocationContext.blob): the upload must have exactly these
   * bytes, or the run never starts; aws reads the upload as `fileb://` as the caller's argv said.
   */
  digests?: Map<number, BlobDigest>;
}

function unsupported(msg: string): ApiError {
  return new ApiError('run_unsupported', `this call cannot run on the broker: ${msg}`);
}

export function planRunFiles(inv: ParsedInvocation, pinned: ReadonlySet<string>, where: { cwd: string; home: string | undefined }): RunFilePlan {
  // The broker runs aws's API calls, nothing else: a command that starts another program on the machine it runs
  // on (`emr ssh`, `ssm start-session`'s plugin) or only changes local configuration has no place there.
  if (inv.kind === 'local' || inv.risks.includes('external_process')) {
    throw unsupported(`\`aws ${inv.command}${inv.subcommand ? ` ${inv.subcommand}` : ''}\` runs a program or changes configuration on the machine it runs on`);
  }
  const argv = inv.canonicalArgv;
  const ctx = { account: '', region: '', cwd: where.cwd, env: where.home ? { HOME: where.home } : {} };
  const expands = (j: number, path: string, blob = false): boolean => {
    let t = argv[j];
    // A blob's token is its whole `fileb://` value; any other file:// value is pinned or refused.
    if (blob && t?.startsWith('fileb://')) t = t.slice('fileb://'.length);
    else if (t === undefined || t.startsWith('s3://') || /^fileb?:\/\//.test(t)) return false;
    try {
      return expandPath(t, ctx, `argument ${j}`) === path;
    } catch {
      return false;
    }
  };
  const plan: RunFilePlan = { inputs: [], outputs: [] };
  const used = new Set<number>();
  const recursive = argv.includes('--recursive') || (inv.command === 's3' && inv.subcommand === 'sync');
  for (const f of inv.files) {
    if (f.mode === 'read' && pinned.has(f.path)) continue;
    let token = -1;
    if (f.argument.startsWith('--')) {
      const at = argv.indexOf(f.argument);
      if (at >= 0 && expands(at + 1, f.path, f.digest !== undefined)) token = at + 1;
    } else {
      const matches = argv.map((_, j) => j).filter((j) => expands(j, f.path));
      // The source of an s3 copy comes before its destination; an OUTFILE is the last word that names it.
      token = (f.argument === 'paths[0]' ? matches[0] : matches.at(-1)) ?? -1;
    }
    if (token < 0 || used.has(token)) throw unsupported(`it ${f.mode === 'read' ? 'reads' : 'writes'} ${f.path} (${f.argument}) in a way the broker cannot carry over`);
    used.add(token);
    if (f.mode === 'read') {
      if (recursive) throw unsupported(`it uploads the directory ${f.path}; upload single files, or run it where execution is local`);
      plan.inputs.push(token);
      if (f.digest) (plan.digests ??= new Map()).set(token, f.digest);
    } else {
      plan.outputs.push({ token, dir: recursive });
    }
  }
  return plan;
}
