import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import type { IoHost } from '../io/host.js';

/**
 * The pieces that let one MCP tool call run the CLI's own run path (src/client/run-invocation.ts) unchanged: an
 * IoHost that keeps diagnostics instead of printing them (stdout of this process is the MCP channel), output
 * sinks that keep aws's already-masked output up to a size, and a signal source that turns the client's
 * cancellation into the SIGINT the run path already knows how to handle (withdraw a pending approval, stop aws).
 */

/** Collects bytes up to `limit`, counting everything it was given, so a result can say "N of M bytes". */
export class BoundedSink extends Writable {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;

  constructor(private readonly limit: number) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.total += chunk.length;
    const room = this.limit - this.kept;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      this.chunks.push(Buffer.from(part));
      this.kept += part.length;
    }
    done();
  }

  get truncated(): boolean {
    return this.total > this.kept;
  }

  /** The kept bytes as UTF-8; a character cut at the limit is dropped rather than shown half. */
  text(): string {
    const s = Buffer.concat(this.chunks).toString('utf8');
    return this.truncated ? s.replace(/\uFFFD$/, '') : s;
  }
}

export interface HostEvent {
  kind: 'info' | 'warn' | 'error' | 'status' | 'result';
  text: string;
}

/** A non-interactive IoHost (no prompts, no colour) that records what the run path says and passes it on. */
export class CapturingHost implements IoHost {
  readonly interactive = false;
  readonly color = false;
  readonly lines: string[] = [];

  constructor(private readonly onEvent: (e: HostEvent) => void = () => undefined) {}

  private keep(kind: HostEvent['kind'], text: string): void {
    if (kind !== 'status') this.lines.push(kind === 'warn' ? `warning: ${text}` : text);
    if (text) this.onEvent({ kind, text });
  }
  result(text: string): void {
    this.keep('result', text);
  }
  info(text: string): void {
    this.keep('info', text);
  }
  warn(text: string): void {
    this.keep('warn', text);
  }
  error(text: string): void {
    this.keep('error', text);
  }
  status(text: string): void {
    this.keep('status', text);
  }
}

/**
 * A signal source for the run path (runner/run-aws.ts forwards SIGINT/SIGTERM to aws; the approval wait withdraws
 * the request on SIGINT). Once `abort()` was called, a listener added later is called at once: a cancellation
 * that arrives while the grant request is still in flight must still reach the approval wait that follows.
 */
export class AbortSignals {
  private readonly emitter = new EventEmitter();
  private fired = new Set<NodeJS.Signals>();

  on(signal: NodeJS.Signals, listener: () => void): this {
    this.emitter.on(signal, listener);
    if (this.fired.has(signal)) setImmediate(listener);
    return this;
  }
  off(signal: NodeJS.Signals, listener: () => void): this {
    this.emitter.off(signal, listener);
    return this;
  }
  emit(signal: NodeJS.Signals): void {
    this.fired.add(signal);
    this.emitter.emit(signal);
  }
  get aborted(): boolean {
    return this.fired.size > 0;
  }
}
