import { Command } from 'commander';
import { GuardError } from '../../errors.js';
import type { CliContext } from '../context.js';

// Placeholder until the approvals command lands; refuses clearly rather than pretending.
export function command(_ctx: CliContext): Command {
  return new Command('approvals').allowUnknownOption().argument('[args...]').action(() => {
    throw new GuardError('unsupported', '`guard-aws approvals` is not available in this build yet');
  });
}
