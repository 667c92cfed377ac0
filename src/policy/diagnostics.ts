import { GuardError } from '../errors.js';
import { visible } from '../terminal-text.js';

/** One finding about a policy or policy-test file, printed as `file:line:col: message`. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  severity: 'error' | 'warning';
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  // Test files hold argvs that may carry control characters: the line is shown with them visible.
  return visible(`${d.file}:${d.line}:${d.col}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message.replace(/\s*[\r\n]+\s*/g, ' ')}`);
}

/** GuardError `policy_invalid` (exit 78) naming the first problem on one line; `details.errors` lists all. */
export function policyInvalid(errors: Diagnostic[]): GuardError {
  const lines = errors.map(formatDiagnostic);
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more problem${lines.length > 2 ? 's' : ''}; run \`guard-aws policy check\`)` : '';
  return new GuardError('policy_invalid', `${lines[0] ?? 'invalid policy'}${more}`, { details: { errors: lines } });
}
