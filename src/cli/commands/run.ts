import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

export async function runAws(_argv: string[], _ctx: CliContext): Promise<number> {
  throw new GuardError('unsupported', 'running aws through the broker is not available in this build yet');
}
