import type { IoHost } from '../io/host.js';

/** What every command receives. Commands parse options and render; logic lives in src/<domain>/. */
export interface CliContext {
  host: IoHost;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Set by a command to choose the process exit code (default 0). */
  exitCode: number;
}
