import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { AwsBinary } from '../find-aws.js';

/** What runAws needs of a warm CLI pool (src/runner/warm/pool.ts), kept apart so the local CLI loads none of it. */

/** What a warm child looks like to runAws: the subset of ChildProcess it uses. */
export interface WarmChild extends EventEmitter {
  stdin: Writable | null;
  stdout: Readable;
  stderr: Readable;
  exitCode: number | null;
  signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
}

/** A warm run could not be started and nothing ran: the caller falls back to a fresh aws. */
export class WarmUnavailable extends Error {
  override name = 'WarmUnavailable';
}

export interface WarmLaunch {
  /** Without "aws": as a fresh spawn's argv. */
  argv: string[];
  env: Record<string, string>;
  /** The run's directory (absolute): its working directory, holding its private HOME. Handed to the run's uid. */
  cwd: string;
  stdin: boolean;
}

/** One run's claim on a supervisor: the parent pid the masking plugin ties to, and the launch. */
export interface WarmLease {
  parentPid: number;
  launch(o: WarmLaunch): Promise<WarmChild>;
  /** Gives the slot back (after the run, or when launch failed and the run falls back). */
  release(): void;
}

/** What runAws takes: a pool, or anything that hands out leases. */
export interface WarmRunner {
  acquire(aws: AwsBinary): WarmLease | null;
}

