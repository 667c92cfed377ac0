import { Command } from 'commander';
import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

// Placeholder until the shim command lands; refuses clearly rather than pretending.
export function command(_ctx: CliContext): Command {
  return new Command('shim').allowUnknownOption().argument('[args...]').action(() => {
    throw new GuardError('unsupported', '`guard-aws shim` is not available in this build yet');
  });
}
