import { Command } from 'commander';
import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

// Placeholder until the login command lands; refuses clearly rather than pretending.
export function command(_ctx: CliContext): Command {
  return new Command('login').allowUnknownOption().argument('[args...]').action(() => {
    throw new GuardError('unsupported', '`guard-aws login` is not available in this build yet');
  });
}
