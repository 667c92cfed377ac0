import { GuardError } from '../errors.js';

/**
 * guard-aws's own options on an aws invocation. They are read only at the head of the argv, before the first
 * aws token, so they can never be confused with an aws operation's own options (`--reason` and `--wait` exist
 * as aws parameters elsewhere). `--profile NAME` is the exception: it is an aws global option, accepted in any
 * position, and guard-aws reads it as the broker target and never passes it to aws (a profile would make
 * botocore ignore the scoped credentials: docs/aws-cli-parsing.md §6.1 vector 1).
 */
export interface GuardOptions {
  approvalId?: string;
  waitSeconds?: number;
  reason?: string;
  noInput: boolean;
  broker?: string;
  target?: string;
}

const HEAD_VALUE = new Set(['--approval', '--wait', '--reason', '--broker']);

export function splitGuardOptions(argv: string[], env: NodeJS.ProcessEnv = {}): { options: GuardOptions; awsArgv: string[] } {
  const options: GuardOptions = { noInput: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      i++;
      break;
    }
    if (tok === '--no-input') {
      options.noInput = true;
      continue;
    }
    const eq = tok.indexOf('=');
    const name = eq > 0 ? tok.slice(0, eq) : tok;
    if (!HEAD_VALUE.has(name)) break;
    let value: string | undefined;
    if (eq > 0) value = tok.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || value === '') {
      throw new GuardError('usage', `${name} needs a value (argument ${i + 1})`);
    }
    setOption(options, name, value);
  }
  const rest = argv.slice(i);
  const awsArgv: string[] = [];
  for (let j = 0; j < rest.length; j++) {
    const tok = rest[j]!;
    if (tok === '--profile' || tok.startsWith('--profile=')) {
      const value = tok === '--profile' ? rest[++j] : tok.slice('--profile='.length);
      if (!value || value.startsWith('--')) throw new GuardError('usage', '--profile needs a target name');
      if (options.target !== undefined && options.target !== value) {
        throw new GuardError('usage', `--profile given twice (${options.target}, ${value})`);
      }
      options.target = value;
      continue;
    }
    awsArgv.push(tok);
  }
  if (options.waitSeconds === undefined && env.GUARD_AWS_APPROVAL_WAIT) {
    options.waitSeconds = parseWait(env.GUARD_AWS_APPROVAL_WAIT, 'GUARD_AWS_APPROVAL_WAIT');
  }
  return { options, awsArgv };
}

function setOption(o: GuardOptions, name: string, value: string): void {
  switch (name) {
    case '--approval':
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(value)) throw new GuardError('usage', `--approval: not an approval id: ${JSON.stringify(value.slice(0, 40))}`);
      o.approvalId = value;
      return;
    case '--wait':
      o.waitSeconds = parseWait(value, '--wait');
      return;
    case '--reason':
      o.reason = value;
      return;
    case '--broker':
      o.broker = value;
      return;
  }
}

function parseWait(value: string, where: string): number {
  if (!/^\d{1,6}$/.test(value)) throw new GuardError('usage', `${where}: expected whole seconds, got ${JSON.stringify(value.slice(0, 20))}`);
  return Number(value);
}
