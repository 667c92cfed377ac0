import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { ApprovalSummary, GrantResponse } from '../api/types.js';
import { GuardError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { IoHost } from '../io/host.js';
import { assertGrantTable, cliRelease, type CliRelease } from '../invocation/cli-release.js';
import { modelIndex } from '../invocation/model.js';
import type { AwsBinary } from '../runner/find-aws.js';
import { parseInvocation } from '../invocation/parse.js';
import type { BlobDigest, ParsedInvocation } from '../invocation/types.js';
import { askRun, BrokerClient, type ApprovalNeeded, type FetchLike, type Granted, type RunOnBroker } from '../api/broker-client.js';
import type { GrantRequest, RunRequest } from '../api/types.js';
import { splitGuardOptions, type GuardOptions } from './guard-options.js';
import { snapshotFiles, type Snapshot } from '../runner/snapshot.js';
import type { BrokerSession as ClientSession } from '../auth/broker-session.js';

/**
 * The main path of `guard-aws <aws args…>`: parse locally (fast, clear errors), ask the broker for a grant
 * scoped to exactly this call (waiting for an approval when the broker asks for one), run the real aws sealed
 * with the scoped credentials and masked output, and leave a signed transcript (spooled first, so nothing is
 * lost when the broker cannot be reached afterwards).
 *
 * Everything is injected so tests can drive it; the command file only wires process objects in.
 */
export interface RunInvocationDeps {
  host: IoHost;
  env: NodeJS.ProcessEnv;
  cwd: string;
  session: (options: GuardOptions) => Promise<ClientSession>;
  stdin: Readable | 'inherit' | null;
  stdout: Writable;
  stderr: Writable;
  /** Width of the caller's terminal when stdout is one (aws lays tables out for it). */
  tty?: { columns: number } | null;
  signals: { on(s: NodeJS.Signals, l: () => void): unknown; off(s: NodeJS.Signals, l: () => void): unknown };
  fetch?: FetchLike;
  readFile?: (path: string) => Buffer;
  now?: () => number;
  /**
   * Told the broker's decision once a grant is issued (never the credentials): `guard-aws mcp` reports the
   * decision and rule of a call that ran in its structured result.
   */
  onGrant?: (g: GrantDecision) => void;
}

/** The secret-free part of a grant: what was decided, by which rule, for which target. */
export interface GrantDecision {
  grantId: string;
  decision: GrantResponse['decision'];
  rule: string | null;
  target: string;
  approvalId?: string;
}

/** What the broker has to see of local files (file:// values, --cli-input-json): at most this much in all. */
const MAX_FILE_BYTES = 128 * 1024;
/**
 * A whole `fileb://` value of a blob parameter larger than this goes to the broker as its digest only (request
 * `blobs`; no decision depends on a blob's bytes): a Lambda zip of a few MB is no burden on the decision. The
 * bytes hashed are the bytes that run: uploaded as a run input (checked by the broker), or pinned here.
 */
const BLOB_INLINE_MAX = 64 * 1024;

export async function runInvocation(argv: string[], d: RunInvocationDeps): Promise<number> {
  const { options, awsArgv } = splitGuardOptions(argv, d.env);
  if (awsArgv.length === 0) throw new GuardError('usage', 'no aws command given (try `guard-aws -- sts get-caller-identity`)');

  // Lazy imports keep `guard-aws explain` and friends from paying for the runner, transcript and auth code.
  const [{ assertNotNested, resolveCliRelease, findAws, runAws }, transcript] = await Promise.all([
    import('../runner/index.js'),
    import('./transcript-link.js'),
  ]);
  assertNotNested(d.env);

  // 0. Which aws will run, and which command table reads argvs for it (docs/aws-cli-parsing.md §6.3): the
  //    client parses with that table and tells the broker the release, so the broker decides with it too. A
  //    machine without aws can still make calls the broker runs itself: the broker then reads the argv with its
  //    own aws's table, and the missing aws matters only if the broker lets the call run here.
  let aws: AwsBinary | undefined;
  let noAws: unknown;
  let cli: CliRelease;
  try {
    aws = findAws({ env: d.env, cwd: d.cwd });
  } catch (e) {
    if (!(e instanceof GuardError) || e.code !== 'aws_not_found') throw e;
    noAws = e;
    aws = undefined;
  }
  // An aws that is there but cannot say its release fails here, before any grant (only a missing one is
  // left for the broker to make up for).
  cli = aws ? resolveCliRelease(aws, { env: d.env }) : cliRelease(modelIndex('v1').cliVersion);

  // 1. Understand the call locally: an unparseable argv stops here (64) before any network traffic. The
  //    broker re-parses it itself; the files it needs to see are sent along with their contents.
  const files = new Map<string, string>();
  const fileBytes = new Map<string, Buffer>();
  const blobBytes = new Map<string, { data: Buffer; digest: BlobDigest }>();
  // Files read to see whether they are large blobs, kept so the parse reads each file once.
  const seen = new Map<string, Buffer>();
  let total = 0;
  const read = d.readFile ?? ((p: string) => readFileSync(p));
  const parseWith = (release: CliRelease): ParsedInvocation => parseInvocation(awsArgv, {
    account: '000000000000',
    region: d.env.AWS_REGION || d.env.AWS_DEFAULT_REGION || 'us-east-1',
    cwd: d.cwd,
    env: d.env,
    cliVersion: release.table,
    ...(release.exactOptionNames ? { exactOptionNames: true } : {}),
    blob: (path) => {
      const known = blobBytes.get(path);
      if (known) return known.digest;
      let data: Buffer;
      try {
        data = seen.get(path) ?? read(path);
      } catch {
        return undefined; // the parse reads it again and names the error
      }
      if (data.length <= BLOB_INLINE_MAX) {
        seen.set(path, data);
        return undefined;
      }
      const digest = { sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
      blobBytes.set(path, { data, digest });
      return digest;
    },
    readFile: (path) => {
      const data = seen.get(path) ?? read(path);
      total += data.length;
      if (total > MAX_FILE_BYTES) {
        throw new GuardError('usage', `${path}: files read by parameters exceed ${MAX_FILE_BYTES / 1024} KiB in all; the broker could not check them`);
      }
      files.set(path, data.toString('utf8'));
      fileBytes.set(path, data);
      return data;
    },
  });
  let local: ParsedInvocation;
  try {
    local = parseWith(cli);
  } catch (e) {
    // Without aws here, the release that runs is the broker's, which may be v2: a command only v2 has
    // (`logs tail`) is read with the v2 table for these early checks, and the broker judges it with its own.
    if (aws || !(e instanceof GuardError) || (e.code !== 'parse' && e.code !== 'unsupported')) throw e;
    files.clear();
    fileBytes.clear();
    blobBytes.clear();
    seen.clear();
    total = 0;
    try {
      local = parseWith(cliRelease(modelIndex('v2').cliVersion));
    } catch {
      throw e;
    }
  }

  // 2. Every local check before the broker is asked: a grant is spent (and later listed as unreported) if the
  //    run cannot happen after it. Which aws runs and its release were settled in step 0 (aws --version,
  //    cached); here, that the spool can take the transcript (a read-only or full disk is exit 74 here, not a
  //    failure after the grant).
  const spool = transcript.spoolFor(d.env);
  transcript.checkSpool(spool);

  d.host.status(`asking the broker for ${local.command}${local.subcommand ? ` ${local.subcommand}` : ''}…`);
  const session = await d.session(options);
  const broker = new BrokerClient(session.brokerUrl, d.fetch);

  // Transcripts left by earlier runs (broker down, run killed) go first; a failure here never blocks this run.
  await transcript.flushQuietly(spool, session, d.fetch, d.host);

  const key = transcript.newKey();
  // stdin goes to a run on the broker only when the call can read it (`-` as a path, /dev/stdin) and it is not a
  // terminal: anything else would make the upload wait for an end of input that never comes.
  const stdinTty = d.stdin === 'inherit' && process.stdin.isTTY === true;
  const readsStdin = awsArgv.some((a) => a === '-' || a.includes('/dev/stdin'));
  const request: RunRequest = {
    argv: awsArgv,
    ...(aws ? { cliVersion: cli.version } : {}),
    ...(options.target ? { target: options.target } : {}),
    ...(fileBytes.size ? { fileData: Object.fromEntries([...fileBytes].map(([p, b]) => [p, b.toString('base64')])) } : {}),
    ...(blobBytes.size ? { blobs: Object.fromEntries([...blobBytes].map(([p, b]) => [p, b.digest])) } : {}),
    transcriptKey: key.publicKey,
    ...(options.reason ? { reason: options.reason } : {}),
    cwd: d.cwd,
    home: d.env.HOME || homedir(),
    ...(d.stdin !== null && !stdinTty && readsStdin ? { stdin: true } : {}),
  };
  // The same request as a grant request, for an older broker without the run API.
  const { fileData: _fd, stdin: _si, ...grantBase } = request;
  const grantRequest: GrantRequest = { ...grantBase, transcriptKey: key.publicKey, ...(files.size ? { files: Object.fromEntries(files) } : {}) };

  let legacy = false;
  const ask = async (extra: { approvalId?: string; reason?: string }): Promise<Granted | RunOnBroker | ApprovalNeeded> => {
    const token = await session.token();
    if (!legacy) {
      const a = await askRun(broker, token, { ...request, ...extra });
      if (a.kind !== 'no_runs_api') return a;
      legacy = true;
    }
    return broker.grant(token, { ...grantRequest, ...extra });
  };
  let answer = await ask(options.approvalId ? { approvalId: options.approvalId } : {});
  if (answer.kind === 'approval') {
    let approval = answer.approval;
    if (approval.status === 'pending' && !options.reason && !options.noInput) {
      // Approvers decide better with a reason; asking again finds the same request and adds it.
      const { promptReason, withdrawInterrupted } = await import('../approvals/requester.js');
      const opened = approval.id;
      const client = { brokerUrl: session.brokerUrl, token: session.token, ...(d.fetch ? { fetch: d.fetch } : {}) };
      const reason = await promptReason(d.host, answer.rule, answer.reason, { id: opened, withdraw: () => withdrawInterrupted(client, opened) });
      if (reason) {
        const again = await ask({ reason });
        if (again.kind === 'approval') approval = again.approval;
      }
    }
    const approvalId = await awaitApproval(approval, options, session, d);
    answer = await ask({ approvalId });
    if (answer.kind === 'approval') {
      throw new GuardError('denied', `the broker did not accept approval ${approvalId} for this call (${answer.code})`);
    }
  }
  if (answer.kind === 'broker') return runOnBroker(answer, request.stdin === true, local, blobBytes, session, d, broker.answeredBy ?? session.brokerUrl);
  if (!aws) throw noAws;
  const grant: GrantResponse = answer.grant;
  d.onGrant?.({
    grantId: grant.grantId,
    decision: grant.decision,
    rule: grant.rule,
    target: grant.target,
    ...(grant.approvalId ? { approvalId: grant.approvalId } : {}),
  });

  // The broker must have decided with the table of the major release that runs here (cli-release.ts).
  assertGrantTable(grant.cliTable, cli.version);

  // 3. Run the real aws with exactly the decided argv, its files pinned to the bytes the broker saw.
  const recorder = transcript.recorder(spool, key, grant, session, d.now);
  // Recorded when aws never finished (a throw below): the run ended in an internal error as far as we know.
  let exitCode: number = EXIT.INTERNAL;
  let pinned: Snapshot | undefined;
  try {
    // Blobs too: what runs is what was hashed for the broker, not the file as it is by now.
    pinned = snapshotFiles(grant.argv, blobBytes.size ? new Map([...fileBytes, ...[...blobBytes].map(([p, b]) => [p, b.data] as const)]) : fileBytes, { cwd: d.cwd, env: d.env });
    d.host.status('');
    const result = await runAws({
      aws,
      argv: pinned.argv,
      credentials: grant.credentials,
      region: grant.region,
      ...(grant.endpoint ? { endpoint: grant.endpoint } : {}),
      ...(grant.masking ? { masking: grant.masking } : {}),
      stdin: d.stdin,
      stdout: d.stdout,
      stderr: d.stderr,
      tty: d.tty ?? null,
      cwd: d.cwd,
      callerEnv: d.env,
      signals: d.signals,
      onChunk: (stream, chunk, atMs) => recorder.onChunk(stream, chunk, atMs),
    });
    exitCode = result.exitCode;
  } finally {
    pinned?.cleanup();
    // 4. Sign, spool, upload. A broker that is down now gets it on the next run or `guard-aws audit flush`.
    recorder.finish(exitCode);
    await transcript.flushQuietly(spool, session, d.fetch, d.host);
  }
  return exitCode;
}

/**
 * The broker runs the call itself: start the run, copy its (already masked) output to the caller's stdout and
 * stderr byte for byte, send stdin when declared, turn Ctrl-C/SIGTERM into a cancel, and exit with aws's exit
 * code there. Nothing is spooled: the broker records and attests the transcript itself.
 */
async function runOnBroker(
  answer: RunOnBroker,
  stdinDeclared: boolean,
  local: ParsedInvocation,
  blobs: ReadonlyMap<string, { data: Buffer }>,
  session: ClientSession,
  d: RunInvocationDeps,
  /** The broker that started the run (of several, src/api/broker-urls.ts): its streams live there only. */
  runUrl: string,
): Promise<number> {
  const [{ streamRun, feedRun, cancelRun, uploadInput }, { inputPaths, outputSink }, { createReadStream }, { Readable }] = await Promise.all([
    import('../api/run-client.js'),
    import('./remote-files.js'),
    import('node:fs'),
    import('node:stream'),
  ]);
  const run = answer.run;
  d.onGrant?.({
    grantId: run.grantId,
    decision: run.decision,
    rule: run.rule,
    target: run.target,
    ...(run.approvalId ? { approvalId: run.approvalId } : {}),
  });
  d.host.status('');
  const token = await session.token();
  const where = { cwd: d.cwd, env: d.env };
  // Files the call reads go up first (the run starts only once it has them); each is one this call reads.
  for (const [n, path] of inputPaths(run.argv, run.inputs ?? [], local.files, where)) {
    // A blob goes up as the bytes that were hashed for the decision (the broker checks them against the digest).
    const blob = blobs.get(path);
    await uploadInput(runUrl, token, run.runId, n, blob ? Readable.from([blob.data]) : createReadStream(path));
  }
  const files = run.outputs?.length ? outputSink(run.argv, run.outputs, local.files, where) : undefined;
  let cancelled = false;
  const cancel = () => {
    if (cancelled) return;
    cancelled = true;
    void cancelRun(runUrl, token, run.runId);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) d.signals.on(s, cancel);
  let feed: { done: Promise<void>; abort(): void } | undefined;
  try {
    const exit = streamRun({ baseUrl: runUrl, token, runId: run.runId, stdout: d.stdout, stderr: d.stderr, ...(files ? { files } : {}) });
    const input = stdinDeclared ? (d.stdin === 'inherit' ? process.stdin : d.stdin) : null;
    // A failed upload fails the run on the broker (it never sees a cut input as the end); the stream says so.
    feed = input ? feedRun(runUrl, token, run.runId, input) : undefined;
    feed?.done.catch(() => undefined);
    const { exitCode } = await exit;
    return exitCode;
  } finally {
    for (const s of signals) d.signals.off(s, cancel);
    // aws may end without reading all of stdin: the upload stops with the run.
    feed?.abort();
    if (feed && d.stdin === process.stdin) process.stdin.destroy();
  }
}

/**
 * The broker asked for an approval of this exact call. On a TTY: wait with a live status until decided (Ctrl-C
 * withdraws). Otherwise: wait up to --wait seconds (0 by default: check once), then exit 75 naming the request
 * and how to continue. Returns the approval id to re-send the grant with once approved.
 */
async function awaitApproval(
  approval: ApprovalSummary,
  options: GuardOptions,
  session: ClientSession,
  d: RunInvocationDeps,
): Promise<string> {
  const { awaitApproval: wait } = await import('../approvals/requester.js');
  const interactive = d.host.interactive && !options.noInput;
  const abort = new AbortController();
  const onInt = () => abort.abort();
  d.signals.on('SIGINT', onInt);
  try {
    const approved = await wait({
      host: d.host,
      approval,
      brokerUrl: session.brokerUrl,
      token: session.token,
      ...(d.fetch ? { fetch: d.fetch } : {}),
      ...(interactive && options.waitSeconds === undefined ? {} : { waitMs: (options.waitSeconds ?? 0) * 1000 }),
      signal: abort.signal,
    });
    d.host.status('');
    d.host.info(`approval ${approved.id} granted; running the call`);
    return approved.id;
  } finally {
    d.signals.off('SIGINT', onInt);
  }
}
