/**
 * The one I/O port. Core code never writes to the console or prompts; it reports to an injected host, so
 * tests can assert on exactly what a person, a CI job or an agent would be shown.
 */
export interface IoHost {
  /** Results (what a command produces) go to stdout. */
  result(text: string): void;
  /** Diagnostics go to stderr. */
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
  /** A transient status line ("asking the broker…"); shown on a TTY only, cleared by the next write. */
  status(text: string): void;
  /** True when prompts and colour are allowed: a TTY on stdin and stderr, no CI, no --no-input. */
  readonly interactive: boolean;
  /** True when stderr may carry ANSI colour. */
  readonly color: boolean;
  /** Asks a question; only called when `interactive`. */
  prompt?(question: string, options?: { secret?: boolean }): Promise<string>;
}

export interface HostEnvironment {
  env: NodeJS.ProcessEnv;
  stdinIsTTY: boolean;
  stderrIsTTY: boolean;
  noInput?: boolean | undefined;
}

/** CI, NO_COLOR, a pipe, or --no-input all mean: no prompts and no colour. */
export function detectInteractivity(h: HostEnvironment): { interactive: boolean; color: boolean } {
  const ci = !!h.env.CI && h.env.CI !== 'false' && h.env.CI !== '0';
  const interactive = h.stdinIsTTY && h.stderrIsTTY && !ci && !h.noInput;
  const color = h.stderrIsTTY && !ci && !('NO_COLOR' in h.env) && h.env.TERM !== 'dumb';
  return { interactive, color };
}
