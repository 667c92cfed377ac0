import { Command } from 'commander';
import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

// Placeholder until the broker command lands; refuses clearly rather than pretending.
export function command(_ctx: CliContext): Command {
  return new Command('broker').allowUnknownOption().argument('[args...]').action(() => {
    throw new GuardError('unsupported', '`guard-aws broker` is not available in this build yet');
  });
}
