import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable, Writable } from 'node:stream';
import { GuardError } from '../errors.js';
import { brokerError } from './broker-client.js';
import { FRAME, FrameDecoder, RUN_STREAM_TYPE, type RunErrorFrame, type RunExitFrame, type RunFileFrame } from './run-frames.js';
import type { ErrorResponse } from './types.js';

/**
 * The streaming half of a remote run (docs/openapi.yaml `/v1/runs/{id}/…`): start it and copy its frames to the
 * caller's stdout/stderr as they come, reading no faster than those take them (so the broker pauses aws); send
 * stdin as a chunked body; cancel. Plain node:http(s): these exchanges last as long as the run, so the broker
 * client's total deadline does not apply to them.
 */
export interface RunStreamOptions {
  baseUrl: string;
  token: string;
  runId: string;
  stdout: Writable;
  stderr: Writable;
  /** Where file frames go (src/client/remote-files.ts); absent = a file frame is a protocol error. */
  files?: FileSink;
}

/** Receives the files a run wrote, one at a time: begin, data…, end. Throws GuardError to refuse one. */
export interface FileSink {
  begin(token: number, name: string): void;
  data(chunk: Buffer): void;
  end(): void;
  /** The stream ended or broke with a file still open: drop it (nothing half-written stays). */
  abort(): void;
}

export interface RemoteExit {
  exitCode: number;
  recordId?: string;
}

function url(base: string, path: string): URL {
  return new URL(path, base.endsWith('/') ? base : `${base}/`);
}

function send(u: URL, headers: Record<string, string>): ClientRequest {
  const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { method: 'POST', headers });
  return req;
}

async function errorOf(res: IncomingMessage): Promise<GuardError> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > 64 * 1024) break;
    chunks.push(c as Buffer);
  }
  let err: ErrorResponse['error'] | undefined;
  try {
    err = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as ErrorResponse).error;
  } catch {
    /* not JSON: judged by status */
  }
  if (res.statusCode === 401) return new GuardError('auth_rejected', `the broker refused the credentials for the run: ${err?.message ?? 'unauthorized'}`);
  return brokerError(res.statusCode ?? 0, err);
}

/** Starts the run and streams it; resolves with the remote exit code once the exit frame arrived. */
export function streamRun(o: RunStreamOptions & { onResponse?: (req: ClientRequest) => void }): Promise<RemoteExit> {
  return new Promise<RemoteExit>((resolve, reject) => {
    const req = send(url(o.baseUrl, `v1/runs/${encodeURIComponent(o.runId)}/start`), {
      authorization: `Bearer ${o.token}`,
      accept: RUN_STREAM_TYPE,
      'content-length': '0',
    });
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      o.files?.abort();
      req.destroy();
      reject(e);
    };
    req.on('error', (e) => fail(new GuardError('broker_unreachable', `the broker connection broke during the run: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        errorOf(res).then(fail, fail);
        return;
      }
      const decoder = new FrameDecoder();
      let end: RemoteExit | GuardError | undefined;
      const write = (dest: Writable, b: Buffer) => {
        if (!dest.write(b)) {
          res.pause();
          dest.once('drain', () => res.resume());
        }
      };
      res.on('data', (chunk: Buffer) => {
        let frames;
        try {
          frames = decoder.push(chunk);
        } catch (e) {
          fail(new GuardError('broker_unreachable', (e as Error).message));
          return;
        }
        try {
          for (const f of frames) handle(f);
        } catch (e) {
          fail(e instanceof GuardError ? e : new GuardError('broker_unreachable', `the run stream could not be read: ${(e as Error).message}`));
        }
      });
      const handle = (f: { type: number; payload: Buffer }) => {
        {
          if (f.type === FRAME.stdout) write(o.stdout, f.payload);
          else if (f.type === FRAME.file || f.type === FRAME.data || f.type === FRAME.fileEnd) {
            if (!o.files) throw new GuardError('broker_unreachable', 'the broker sent a file this run does not write');
            if (f.type === FRAME.file) {
              const x = JSON.parse(f.payload.toString('utf8')) as RunFileFrame;
              o.files.begin(Number(x.token), String(x.name));
            } else if (f.type === FRAME.data) o.files.data(f.payload);
            else o.files.end();
          }
          else if (f.type === FRAME.stderr) write(o.stderr, f.payload);
          else if (f.type === FRAME.exit) {
            const x = JSON.parse(f.payload.toString('utf8')) as RunExitFrame;
            end = { exitCode: Number.isInteger(x.exitCode) ? x.exitCode : 70, ...(typeof x.recordId === 'string' ? { recordId: x.recordId } : {}) };
          } else if (f.type === FRAME.error) {
            const x = JSON.parse(f.payload.toString('utf8')) as RunErrorFrame;
            end = brokerError(0, { code: x.code as never, message: x.message });
          }
        }
      };
      res.on('end', () => {
        if (settled) return;
        if (end instanceof GuardError) return fail(end);
        if (!end) return fail(new GuardError('broker_unreachable', 'the broker ended the run stream without an exit code'));
        settled = true;
        resolve(end);
      });
      res.on('error', (e) => fail(new GuardError('broker_unreachable', `the run stream broke off: ${e.message}`, { cause: e })));
      res.on('close', () => {
        if (!settled && !res.complete) fail(new GuardError('broker_unreachable', 'the run stream broke off before the run ended'));
      });
    });
    o.onResponse?.(req);
    req.end();
  });
}

/** Sends `input` as the run's stdin (chunked), at the pace the broker takes it; `abort` stops it (the run ended). */
export function feedRun(baseUrl: string, token: string, runId: string, input: Readable): { done: Promise<void>; abort(): void } {
  let req!: ClientRequest;
  const done = new Promise<void>((resolve, reject) => {
    req = send(url(baseUrl, `v1/runs/${encodeURIComponent(runId)}/stdin`), {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'transfer-encoding': 'chunked',
    });
    req.on('error', reject);
    req.on('response', (res) => settleUpload(res, resolve, reject));
    input.on('error', (e) => req.destroy(e));
    input.pipe(req);
  });
  return {
    done,
    abort() {
      input.unpipe(req);
      req.destroy();
    },
  };
}

/** An upload's answer: 200 resolves once its body is read; anything else rejects with the broker's coded error. */
function settleUpload(res: IncomingMessage, resolve: () => void, reject: (e: unknown) => void): void {
  if (res.statusCode === 200) {
    res.resume();
    res.on('end', () => resolve());
    return;
  }
  errorOf(res).then(reject, reject);
}

/** Streams one local file the run reads (PUT /v1/runs/{id}/inputs/{token}). */
export function uploadInput(baseUrl: string, token: string, runId: string, argToken: number, input: Readable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const u = url(baseUrl, `v1/runs/${encodeURIComponent(runId)}/inputs/${argToken}`);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    req.on('error', (e) => reject(new GuardError('broker_unreachable', `uploading a file for the run failed: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    req.on('response', (res) => settleUpload(res, resolve, reject));
    input.on('error', (e) => {
      req.destroy();
      reject(new GuardError('local_io', `cannot read the file to upload: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    input.pipe(req);
  });
}

/** Asks the broker to cancel the run (SIGINT to aws); errors are ignored: the stream says how it ended. */
export function cancelRun(baseUrl: string, token: string, runId: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = send(url(baseUrl, `v1/runs/${encodeURIComponent(runId)}/cancel`), { authorization: `Bearer ${token}`, 'content-length': '0' });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.setTimeout(10_000, () => req.destroy());
    req.end();
  });
}
