import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, createReadStream, createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { GuardError, isGuardError } from '../errors.js';
import { ApiError } from '../api/http-error.js';
import { encodeFrame, FRAME, type RunErrorFrame, type RunExitFrame } from '../api/run-frames.js';
import { resolveCliRelease } from '../runner/cli-version.js';
import { findAws, type AwsBinary } from '../runner/find-aws.js';
import { runAws } from '../runner/run-aws.js';
import { snapshotFiles } from '../runner/snapshot.js';
import type { CliRelease } from '../invocation/cli-release.js';
import type { MaskingRules } from '../policy/types.js';
import { BodyWriter, DEFAULT_MAX_BODY_BYTES, type BodyRef } from '../transcript/body.js';
import { createTranscriptKey, signTranscript, type TranscriptKey } from '../transcript/sign.js';
import { TRANSCRIPT_VERSION, type Transcript } from '../transcript/types.js';
import type { ExecutionConfig } from './config.js';
import { DEFAULT_EXECUTION } from './execution.js';
import { randomId } from './ids.js';
import type { Issued } from './issue.js';
import type { RunDeps } from './deps.js';
import type { RunFilePlan } from './run-files.js';
import type { BrokerLog } from './log.js';

/**
 * Remote runs: the broker runs the real aws itself with the scoped session (which never leaves it), in a private
 * per-run directory, masks on its side, streams the masked output to the caller as frames (src/api/run-frames.ts)
 * with backpressure all the way to aws's pipes, and records the transcript itself (broker-attested).
 */

interface Run {
  id: string;
  owner: string;
  issued: Issued;
  files: Map<string, Buffer>;
  cwd: string;
  home: string | undefined;
  key: TranscriptKey;
  state: 'pending' | 'running' | 'done';
  stdin: PassThrough | null;
  stdinFed: boolean;
  signals: EventEmitter;
  expiry: NodeJS.Timeout | undefined;
  cancelled: boolean;
  failure: RunErrorFrame | null;
  plan: RunFilePlan;
  /** The private run directory (0700): pinned files, inputs, outputs, aws's HOME and working directory. */
  dir: string;
  /** Input tokens uploaded so far, and their bytes in all. */
  uploaded: Set<number>;
  inputBytes: number;
}

export interface RunView {
  runId: string;
  grantId: string;
}

/** Bytes of the output stream buffered per run before aws's pipes are paused. */
const STREAM_HWM = 64 * 1024;
/** After a cancel, aws gets this long to act on SIGINT before SIGTERM. */
const CANCEL_ESCALATE_MS = 3000;

export class RunRegistry {
  private readonly runs = new Map<string, Run>();
  private awsBin: AwsBinary | undefined;
  private cli: CliRelease | null | undefined;
  private closed = false;

  constructor(
    private readonly deps: RunDeps,
    private readonly cfg: () => ExecutionConfig,
    private readonly masking: MaskingRules | undefined,
    private readonly log: BrokerLog,
  ) {}

  /** The broker's aws, or undefined when it has none (broker runs are then refused: execution_unavailable). */
  aws(): AwsBinary | undefined {
    if (this.awsBin) return this.awsBin;
    try {
      const a = this.deps.aws;
      this.awsBin = typeof a === 'function' ? a() : a ?? findAws({ env: this.deps.env ?? process.env, cwd: '/' });
    } catch (e) {
      if (isGuardError(e) && e.code === 'aws_not_found') return undefined;
      throw e;
    }
    return this.awsBin;
  }

  /** The release of the broker's aws (its command table decides broker runs). */
  cliRelease(): CliRelease | undefined {
    if (this.cli !== undefined) return this.cli ?? undefined;
    if (!this.deps.attest) return (this.cli = null) ?? undefined;
    const aws = this.aws();
    this.cli = aws ? resolveCliRelease(aws, { env: this.deps.env ?? process.env }) : null;
    return this.cli ?? undefined;
  }

  /** Throws 429 when the broker already holds as many runs (pending or running) as configured. */
  checkCapacity(): void {
    const max = this.cfg().maxConcurrent;
    let active = 0;
    for (const r of this.runs.values()) if (r.state !== 'done') active++;
    if (active >= max) throw new ApiError('too_many_runs', `the broker is running ${active} calls, its limit (execution.maxConcurrent); try again shortly`);
  }

  newKey(): TranscriptKey {
    return createTranscriptKey();
  }

  /** Registers a decided broker run; it waits for `start` up to execution.startWithinSec. */
  create(o: {
    owner: string;
    issued: Issued;
    files: Map<string, Buffer>;
    cwd: string | undefined;
    home: string | undefined;
    key: TranscriptKey;
    stdin: boolean;
    plan: RunFilePlan;
  }): RunView {
    const id = `run_${randomId(16)}`;
    // A warm pool's supervisor sees only its own run root: runs it may take get their directories there.
    const dir = mkdtempSync(join(this.deps.warm?.runRoot ?? this.cfg().runDir ?? tmpdir(), 'guard-aws-run-'));
    chmodSync(dir, 0o700);
    for (const sub of ['in', 'out']) mkdirSync(join(dir, sub), { mode: 0o700 });
    const run: Run = {
      id,
      owner: o.owner,
      issued: o.issued,
      files: o.files,
      cwd: o.cwd ?? '/',
      home: o.home,
      key: o.key,
      state: 'pending',
      stdin: o.stdin ? new PassThrough({ highWaterMark: STREAM_HWM }) : null,
      stdinFed: false,
      signals: new EventEmitter(),
      expiry: undefined,
      cancelled: false,
      failure: null,
      plan: o.plan,
      dir,
      uploaded: new Set(),
      inputBytes: 0,
    };
    run.expiry = setTimeout(() => void this.expire(run), this.cfg().startWithinSec * 1000);
    run.expiry.unref();
    this.runs.set(id, run);
    return { runId: id, grantId: o.issued.grantId };
  }

  private get(id: string, subject: string): Run {
    const run = this.runs.get(id);
    // Someone else's run is as unknown as a missing one: its id says nothing to another caller.
    if (!run || run.owner !== subject) throw new ApiError('not_found', `no run ${id.slice(0, 40)}`);
    return run;
  }

  /** A run never started: the broker records that it was decided and never ran. */
  private async expire(run: Run): Promise<void> {
    if (run.state !== 'pending') return;
    run.state = 'done';
    this.runs.delete(run.id);
    run.stdin?.destroy();
    rmSync(run.dir, { recursive: true, force: true });
    // Recorded like a run that never finished; when even that fails, the grant stays listed as one without a
    // transcript (audit), and the operator is told here.
    await this.attest(run, { startedAt: Date.now(), endedAt: null, exitCode: null, body: null }).catch((e: unknown) => {
      this.log({ level: 'error', msg: 'broker-attested transcript of an expired run not recorded', runId: run.id, error: (e as Error)?.message });
    });
  }

  /** Starts the run; the returned stream carries its frames and ends after the exit (or error) frame. */
  start(id: string, subject: string): Readable {
    const run = this.get(id, subject);
    if (run.state !== 'pending') throw new ApiError('run_state', `run ${id} was started already`);
    const missing = run.plan.inputs.filter((t) => !run.uploaded.has(t));
    if (missing.length) throw new ApiError('run_state', `run ${id} needs its input files first (argument ${missing.join(', ')})`);
    run.state = 'running';
    clearTimeout(run.expiry);
    const out = new PassThrough({ highWaterMark: STREAM_HWM });
    // The caller went away (closed the stream): the run is cancelled, not left running unobserved.
    out.once('close', () => {
      if (run.state === 'running') this.signal(run);
    });
    void this.execute(run, out);
    return out;
  }

  /** The body of POST /v1/runs/{id}/stdin: copied into aws's stdin, at most execution.maxStdinBytes. */
  async feed(id: string, subject: string, body: Readable): Promise<number> {
    const run = this.get(id, subject);
    if (!run.stdin) throw new ApiError('run_state', `run ${id} was not declared with stdin`);
    if (run.stdinFed || run.state === 'done') throw new ApiError('run_state', `run ${id} has its stdin already`);
    run.stdinFed = true;
    const max = this.cfg().maxStdinBytes;
    const sink = run.stdin;
    let n = 0;
    try {
      for await (const chunk of body) {
        n += (chunk as Buffer).length;
        if (n > max) {
          // aws must not run on a cut input (an upload of half a file): the run fails rather than see EOF.
          this.fail(run, { code: 'payload_too_large', message: `stdin is larger than the broker's limit of ${max} bytes (execution.maxStdinBytes)` });
          throw new ApiError('payload_too_large', `stdin is larger than the broker's limit of ${max} bytes (execution.maxStdinBytes)`, {}, { headers: { Connection: 'close' } });
        }
        if (sink.destroyed) break;
        if (!sink.write(chunk)) await new Promise<void>((r) => {
          const done = () => {
            sink.off('drain', done);
            sink.off('close', done);
            r();
          };
          sink.once('drain', done);
          sink.once('close', done);
        });
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      // The upload broke off: a truncated stdin must not look like its end to aws.
      this.fail(run, { code: 'bad_request', message: 'the stdin upload broke off' });
      throw new ApiError('bad_request', 'the stdin upload broke off');
    }
    sink.end();
    return n;
  }

  /** PUT /v1/runs/{id}/inputs/{token}: one file the call reads, streamed into the run directory before start. */
  async upload(id: string, subject: string, token: number, body: Readable): Promise<number> {
    const run = this.get(id, subject);
    if (run.state !== 'pending') throw new ApiError('run_state', `run ${id} was started already: inputs come first`);
    if (!run.plan.inputs.includes(token)) throw new ApiError('run_state', `run ${id} reads no local file at argument ${token}`);
    if (run.uploaded.has(token)) throw new ApiError('run_state', `input ${token} of run ${id} was uploaded already`);
    run.uploaded.add(token);
    const max = this.cfg().maxInputBytes;
    const path = join(run.dir, 'in', String(token));
    let n = 0;
    const digest = run.plan.digests?.get(token);
    const hash = digest ? createHash('sha256') : null;
    const counted = async function* (src: Readable) {
      for await (const c of src) {
        n += (c as Buffer).length;
        hash?.update(c as Buffer);
        if (run.inputBytes + n > max) throw new ApiError('payload_too_large', `input files exceed the broker's limit of ${max} bytes (execution.maxInputBytes)`, {}, { headers: { Connection: 'close' } });
        yield c as Buffer;
      }
    };
    try {
      await pipeline(body, counted, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    } catch (e) {
      rmSync(path, { force: true });
      run.uploaded.delete(token);
      if (e instanceof ApiError) throw e;
      throw new ApiError('bad_request', `the upload of input ${token} broke off`);
    }
    if (digest && hash) {
      // The call was decided on this digest (a blob's stand-in): other bytes are another call. The run is ended
      // unstarted (recorded as decided and never run), so nothing can run on them or be retried into it.
      const got = hash.digest('hex');
      if (got !== digest.sha256 || n !== digest.size) {
        rmSync(path, { force: true });
        void this.expire(run);
        throw new ApiError('input_mismatch', `input ${token} of run ${id} is not the file the call was decided on (SHA-256 ${got.slice(0, 16)}…, ${n} bytes; decided on ${digest.sha256.slice(0, 16)}…, ${digest.size} bytes); nothing ran`);
      }
    }
    run.inputBytes += n;
    return n;
  }

  cancel(id: string, subject: string): void {
    const run = this.get(id, subject);
    if (run.state === 'pending') {
      void this.expire(run);
      return;
    }
    if (run.state === 'running') this.signal(run);
  }

  private fail(run: Run, f: RunErrorFrame): void {
    run.failure ??= f;
    this.signal(run);
  }

  private signal(run: Run): void {
    if (run.cancelled) return;
    run.cancelled = true;
    run.stdin?.destroy();
    run.signals.emit('SIGINT');
    setTimeout(() => run.signals.emit('SIGTERM'), CANCEL_ESCALATE_MS).unref();
    setTimeout(() => run.signals.emit('SIGKILL'), 2 * CANCEL_ESCALATE_MS).unref();
  }

  private async execute(run: Run, out: PassThrough): Promise<void> {
    const { issued } = run;
    const recorded = { startedAt: Date.now(), endedAt: null as number | null, exitCode: null as number | null, body: null as BodyRef | null, runner: undefined as 'warm' | 'fresh' | undefined };
    // The masked output goes straight into a body file in the body store's staging directory as it arrives (bounded
    // memory: src/transcript/body.ts); finished, it is moved into the store and the transcript binds it by digest.
    const bodies = this.deps.bodies?.();
    let writer: BodyWriter | undefined;
    let recordError: unknown;
    let releaseBody: (() => void) | undefined;
    if (bodies) {
      try {
        releaseBody = bodies.hold?.(join(bodies.stagingDir, `${run.id}.body`));
        writer = new BodyWriter(join(bodies.stagingDir, `${run.id}.body`), { maxBytes: bodies.maxBytes ?? DEFAULT_MAX_BODY_BYTES, durable: true, offload: true });
      } catch (e) {
        recordError = e;
      }
    }
    const dir = run.dir;
    let exitCode: number | null = null;
    let runner: 'warm' | 'fresh' | undefined;
    let error: RunErrorFrame | null = null;
    try {
      const aws = this.aws();
      if (!aws) throw new ApiError('execution_unavailable', 'the broker has no aws to run the call with');
      // The files the broker decided on, pinned into the run's own directory; argv rewritten to them. Inputs and
      // outputs (src/broker/run-files.ts) point into the run directory too: aws touches nothing else on disk.
      const pinned = snapshotFiles(issued.invocation.canonicalArgv, run.files, { cwd: run.cwd, env: run.home ? { HOME: run.home } : {} }, dir);
      const argv = [...pinned.argv];
      for (const t of run.plan.inputs) argv[t] = `${run.plan.digests?.has(t) ? 'fileb://' : ''}${join(dir, 'in', String(t))}`;
      for (const o of run.plan.outputs) {
        argv[o.token] = join(dir, 'out', String(o.token));
        if (o.dir) mkdirSync(argv[o.token]!, { mode: 0o700 });
      }
      const result = await runAws({
        aws,
        argv,
        credentials: issued.credentials,
        region: issued.invocation.region,
        ...(issued.target.endpoint ? { endpoint: issued.target.endpoint } : {}),
        ...(this.masking ? { masking: this.masking } : {}),
        stdin: run.stdin,
        stdout: frameWriter(out, FRAME.stdout),
        stderr: frameWriter(out, FRAME.stderr),
        tty: null,
        // The run directory itself: the private HOME, inputs and outputs all live in it, so a confined run's one
        // writable place (src/runner/isolation.ts) holds exactly what the run needs.
        cwd: dir,
        tmpRoot: dir,
        callerEnv: {},
        signals: run.signals,
        ...(this.deps.isolation ? { isolation: this.deps.isolation(aws) } : {}),
        ...(this.deps.warm ? { warm: this.deps.warm } : {}),
        onChunk: (stream, chunk, atMs) => {
          if (!writer || recordError) return;
          try {
            writer.write(stream === 'stdout' ? 'o' : 'e', chunk, atMs);
          } catch (e) {
            // The broker's disk failed under the recording: the run is cancelled (nothing runs unrecorded further).
            recordError = e;
            this.signal(run);
          }
        },
      });
      exitCode = result.exitCode;
      runner = result.runner;
      // What aws wrote, back to the caller's paths: only after a clean exit (nothing half-done is handed over).
      if (exitCode === 0 && run.plan.outputs.length && !out.destroyed) await this.sendOutputs(run, out);
    } catch (e) {
      error =
        e instanceof ApiError
          ? { code: e.code, message: e.message }
          : isGuardError(e)
            ? { code: e.code === 'denied' ? 'denied' : 'internal', message: e.message }
            : { code: 'internal', message: 'the broker could not run the call' };
      if (!(e instanceof ApiError) && !(isGuardError(e) && e.code === 'denied')) {
        this.log({ level: 'error', msg: 'remote run failed', runId: run.id, grantId: issued.grantId, error: (e as Error)?.message });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    run.state = 'done';
    this.runs.delete(run.id);
    recorded.endedAt = Date.now();
    recorded.exitCode = exitCode;
    if (runner) recorded.runner = runner;
    let recordId: string | undefined;
    try {
      if (bodies) {
        if (!writer || recordError) throw recordError ?? new Error('no body writer');
        recorded.body = writer.finish();
        await bodies.adopt(writer.path, recorded.body.sha256, recorded.body.size);
      }
      recordId = (await this.attest(run, recorded)).id;
    } catch (e) {
      writer?.abort();
      this.log({ level: 'error', msg: 'broker-attested transcript not recorded', runId: run.id, grantId: issued.grantId, error: (e as Error)?.message });
    } finally {
      releaseBody?.();
    }
    const failure = run.failure ?? error;
    if (!out.destroyed) {
      if (failure && exitCode === null) out.end(encodeFrame(FRAME.error, JSON.stringify(failure)));
      else if (failure) {
        out.write(encodeFrame(FRAME.error, JSON.stringify(failure)));
        out.end();
      } else {
        const exit: RunExitFrame = { exitCode: exitCode ?? 70, ...(recordId ? { recordId } : {}) };
        out.end(encodeFrame(FRAME.exit, JSON.stringify(exit)));
      }
    }
  }

  private async sendOutputs(run: Run, out: PassThrough): Promise<void> {
    const max = this.cfg().maxOutputBytes;
    let total = 0;
    const write = async (b: Buffer) => {
      if (out.destroyed) throw new ApiError('run_state', 'the caller left');
      if (!out.write(b)) await new Promise<void>((r) => {
        const go = () => {
          out.off('drain', go);
          out.off('close', go);
          r();
        };
        out.once('drain', go);
        out.once('close', go);
      });
    };
    const sendFile = async (token: number, name: string, path: string) => {
      total += lstatSync(path).size;
      if (total > max) throw new ApiError('payload_too_large', `files written by the call exceed the broker's limit of ${max} bytes (execution.maxOutputBytes)`);
      await write(encodeFrame(FRAME.file, JSON.stringify({ token, name })));
      for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) await write(encodeFrame(FRAME.data, chunk as Buffer));
      await write(encodeFrame(FRAME.fileEnd, ''));
    };
    for (const o of run.plan.outputs) {
      const root = join(run.dir, 'out', String(o.token));
      if (!existsSync(root)) continue;
      if (!o.dir) {
        if (lstatSync(root).isFile()) await sendFile(o.token, '', root);
        continue;
      }
      const walk = async (d: string): Promise<void> => {
        for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          const p = join(d, e.name);
          // Regular files only: a link aws was tricked into making must not carry a broker file out.
          if (e.isDirectory()) await walk(p);
          else if (e.isFile()) await sendFile(o.token, relative(root, p).split(sep).join('/'), p);
        }
      };
      await walk(root);
    }
  }

  private async attest(
    run: Run,
    r: { startedAt: number; endedAt: number | null; exitCode: number | null; body: BodyRef | null; runner?: 'warm' | 'fresh' | undefined },
  ): Promise<{ id: string }> {
    if (!this.deps.attest) throw new GuardError('internal', 'no audit log to record the transcript in');
    const { issued } = run;
    const t: Transcript = {
      v: TRANSCRIPT_VERSION,
      grantId: issued.grantId,
      caller: { subject: run.owner },
      target: issued.target.name,
      argv: issued.invocation.canonicalArgv,
      decision: issued.decision.decision,
      rule: issued.decision.rule,
      approvalId: issued.approvalId ?? null,
      startedAt: new Date(r.startedAt).toISOString(),
      endedAt: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
      exitCode: r.exitCode,
      status: r.endedAt === null ? 'partial' : 'complete',
      truncated: r.body ? r.body.gapBytes !== 0 : false,
      outputBytes: r.body?.outputBytes ?? 0,
      chunks: [],
      ...(r.body ? { body: r.body } : {}),
      ...(r.runner ? { runner: r.runner } : {}),
    };
    // A run that never started has no output: a v1-shaped transcript with no chunks says exactly that.
    if (!r.body) t.v = 1;
    return this.deps.attest(signTranscript(t, run.key.privateKey), { subject: run.owner });
  }

  /** Cancels every run (broker shutdown). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Running warm children die with their supervisor: it goes once they have had their cancel's time.
    const busy = [...this.runs.values()].some((r) => r.state === 'running');
    if (!busy) this.deps.warm?.close();
    else setTimeout(() => this.deps.warm?.close(), 2 * CANCEL_ESCALATE_MS + 500).unref();
    for (const run of this.runs.values()) {
      if (run.state === 'running') this.signal(run);
      else {
        // Never started: dropped (and recorded as such), its directory removed.
        clearTimeout(run.expiry);
        void this.expire(run);
      }
    }
  }
}

/**
 * A Writable that frames each chunk into `out`, passing `out`'s backpressure on to runAws (which pauses aws's
 * pipe when a write returns false). Once `out` is gone (the caller left), writes are dropped so aws can finish.
 */
function frameWriter(out: PassThrough, type: typeof FRAME.stdout | typeof FRAME.stderr): Writable {
  return new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      if (out.destroyed || out.writableEnded) return cb();
      // At most 64 KiB per frame, whatever size the masker hands over (the client refuses frames over 1 MiB).
      let ok = true;
      for (let i = 0; i < chunk.length; i += 64 * 1024) ok = out.write(encodeFrame(type, chunk.subarray(i, i + 64 * 1024)));
      if (ok) return cb();
      const go = () => {
        out.off('drain', go);
        out.off('close', go);
        cb();
      };
      out.once('drain', go);
      out.once('close', go);
    },
  });
}

export { DEFAULT_EXECUTION };
