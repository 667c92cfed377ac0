import type { IoHost } from '../../src/io/host.js';

/** A host that records everything, for tests. */
export class RecordingHost implements IoHost {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly statuses: string[] = [];
  constructor(
    readonly interactive = false,
    readonly color = false,
  ) {}
  result(text: string): void {
    this.stdout.push(text);
  }
  info(text: string): void {
    this.stderr.push(text);
  }
  warn(text: string): void {
    this.stderr.push(text);
  }
  error(text: string): void {
    this.stderr.push(text);
  }
  status(text: string): void {
    this.statuses.push(text);
  }
}
