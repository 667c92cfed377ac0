import { describe, expect, it } from 'vitest';
import { isGuardError } from '../../src/errors.js';
import { AbortSignals, BoundedSink } from '../../src/mcp/capture.js';
import { splitCommandLine } from '../../src/mcp/command-line.js';

describe('splitCommandLine (a command line a model wrote, split without a shell)', () => {
  it('splits on blanks and honours single quotes, double quotes and backslashes', () => {
    expect(splitCommandLine('aws s3 ls  s3://b/')).toEqual(['aws', 's3', 'ls', 's3://b/']);
    expect(splitCommandLine(`aws s3api put-object --bucket b --key 'a b' --metadata "x=\\"y\\""`)).toEqual([
      'aws', 's3api', 'put-object', '--bucket', 'b', '--key', 'a b', '--metadata', 'x="y"',
    ]);
    expect(splitCommandLine(`a\\ b ''`)).toEqual(['a b', '']);
    // Glob characters stay literal, as in a shell where nothing matches: JMESPath queries use them.
    expect(splitCommandLine('aws s3api list-buckets --query Buckets[*].Name')).toEqual(['aws', 's3api', 'list-buckets', '--query', 'Buckets[*].Name']);
    expect(splitCommandLine("aws ec2 describe-instances --query 'Reservations[].Instances[?State.Name==`running`]'")).toHaveLength(5);
  });

  it.each([
    ['aws s3 ls | sh', /unquoted "\|" at character 11/],
    ['aws s3 ls; rm -rf /', /unquoted ";"/],
    ['aws s3 ls $BUCKET', /unquoted "\$"/],
    ['aws s3 ls "$(id)"', /expansion/],
    ['aws s3 ls `id`', /unquoted "`"/],
    ['aws s3 cp x > out', /unquoted ">"/],
    ['aws s3 ls ~/x', /unquoted "~"/],
    ["aws s3 ls 'open", /unterminated single quote/],
    ['aws s3 ls "open', /unterminated double quote/],
    ['aws s3 ls \\', /trailing backslash/],
    ['aws s3 ls\nrm -rf /', /line break/],
  ])('refuses %j with a usage error naming what and where', (line, message) => {
    let caught: unknown;
    try {
      splitCommandLine(line);
    } catch (e) {
      caught = e;
    }
    expect(isGuardError(caught) && caught.code).toBe('usage');
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).toMatch(/this is not a shell/);
  });
});

describe('BoundedSink', () => {
  it('keeps up to the limit and counts everything', async () => {
    const s = new BoundedSink(5);
    s.write(Buffer.from('abc'));
    s.write(Buffer.from('defgh'));
    await new Promise((r) => s.end(r));
    expect(s.text()).toBe('abcde');
    expect(s.total).toBe(8);
    expect(s.truncated).toBe(true);
  });

  it('drops a UTF-8 character cut at the limit instead of showing half of it', async () => {
    const s = new BoundedSink(4);
    s.write(Buffer.from('abcé'));
    await new Promise((r) => s.end(r));
    expect(s.text()).toBe('abc');
    expect(s.total).toBe(5);
  });
});

describe('AbortSignals', () => {
  it('calls a listener added after the abort, so a cancellation during the grant request still reaches the approval wait', async () => {
    const s = new AbortSignals();
    const seen: string[] = [];
    s.on('SIGINT', () => seen.push('early'));
    s.emit('SIGINT');
    s.on('SIGINT', () => seen.push('late'));
    s.on('SIGTERM', () => seen.push('term'));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['early', 'late']);
    expect(s.aborted).toBe(true);
  });
});
