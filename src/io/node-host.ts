import { GuardError } from '../errors.js';
import { detectInteractivity, type IoHost } from './host.js';

/**
 * util.styleText, read when colour is on. A static `import { styleText } from 'node:util'` builds node:util's whole ES
 * module namespace at start-up, which loads its lazy parts (parseArgs, MIMEType, AbortController…) on every call.
 */
function styleText(format: 'yellow' | 'red' | 'dim', text: string): string {
  return process.getBuiltinModule('node:util').styleText(format, text);
}

/** The host used by the real CLI: stdout for results, stderr for everything else. */
export class NodeIoHost implements IoHost {
  readonly interactive: boolean;
  readonly color: boolean;
  private statusShown = false;

  constructor(opts: { noInput?: boolean } = {}) {
    const d = detectInteractivity({
      env: process.env,
      stdinIsTTY: !!process.stdin.isTTY,
      stderrIsTTY: !!process.stderr.isTTY,
      noInput: opts.noInput,
    });
    this.interactive = d.interactive;
    this.color = d.color;
  }

  private clearStatus(): void {
    if (this.statusShown) {
      process.stderr.write('\r\x1b[2K');
      this.statusShown = false;
    }
  }

  result(text: string): void {
    this.clearStatus();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
  info(text: string): void {
    this.clearStatus();
    process.stderr.write(`${text}\n`);
  }
  warn(text: string): void {
    this.clearStatus();
    process.stderr.write(`${this.color ? styleText('yellow', 'warning:') : 'warning:'} ${text}\n`);
  }
  error(text: string): void {
    this.clearStatus();
    process.stderr.write(`${this.color ? styleText('red', 'guard-aws:') : 'guard-aws:'} ${text}\n`);
  }
  status(text: string): void {
    if (!this.interactive) return;
    this.clearStatus();
    process.stderr.write(this.color ? styleText('dim', text) : text);
    this.statusShown = true;
  }
  async prompt(question: string, options: { secret?: boolean } = {}): Promise<string> {
    this.clearStatus();
    const { default: enquirer } = await import('enquirer');
    let answer: { value: string };
    try {
      answer = (await enquirer.prompt({
        type: options.secret ? 'password' : 'input',
        name: 'value',
        message: question,
        stdout: process.stderr,
      } as never)) as { value: string };
    } catch (e) {
      // enquirer reads the terminal raw, so Ctrl-C (or Escape) is a keypress, not SIGINT: it cancels the prompt and
      // rejects with an empty string. That is the person stopping, not a bug: callers withdraw and exit 130.
      if (e instanceof Error) throw e;
      throw new GuardError('interrupted', 'interrupted (Ctrl-C)');
    }
    return answer.value;
  }
}
