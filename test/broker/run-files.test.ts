import { describe, expect, it } from 'vitest';
import { planRunFiles } from '../../src/broker/run-files.js';
import { parseInvocation } from '../../src/invocation/parse.js';

// Which local paths of a call the broker runs become uploads, downloads, or a refusal (src/broker/run-files.ts),
// with the real parser.
const where = { cwd: '/home/alice/work', home: '/home/alice' };
const plan = (argv: string[], pinned: string[] = [], fileContents: Record<string, string> = {}) =>
  planRunFiles(parseInvocation(argv, { account: '123456789012', region: 'us-east-1', cwd: where.cwd, env: { HOME: where.home }, fileContents }), new Set(pinned), where);
const refused = (argv: string[]) => {
  try {
    plan(argv);
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'planned';
};

describe('planRunFiles', () => {
  it('an upload source is an input, a download destination an output (a tree for --recursive and sync)', () => {
    expect(plan(['s3', 'cp', 'up.bin', 's3://b/k'])).toEqual({ inputs: [2], outputs: [] });
    expect(plan(['s3', 'cp', 's3://b/k', '~/down.bin'])).toEqual({ inputs: [], outputs: [{ token: 3, dir: false }] });
    expect(plan(['s3', 'sync', 's3://b/p', 'tree'])).toEqual({ inputs: [], outputs: [{ token: 3, dir: true }] });
    expect(plan(['s3', 'cp', 's3://b/p', 'tree', '--recursive'])).toEqual({ inputs: [], outputs: [{ token: 3, dir: true }] });
  });
  it("an OUTFILE is the last word naming it, even when the key has the same name; --body's path is an input", () => {
    const p = plan(['s3api', 'get-object', '--bucket', 'b', '--key', 'out.txt', 'out.txt']);
    expect(p.outputs).toEqual([{ token: 6, dir: false }]);
    expect(plan(['s3api', 'put-object', '--bucket', 'b', '--key', 'k', '--body', '/etc/passwd']).inputs).toEqual([7]);
  });
  it('a file:// value sent with the request is pinned, not uploaded', () => {
    expect(plan(['s3api', 'put-bucket-policy', '--bucket', 'b', '--policy', 'file://p.json'], ['/home/alice/work/p.json'], { '/home/alice/work/p.json': '{}' })).toEqual({ inputs: [], outputs: [] });
  });
  it('refuses a directory upload, a write it cannot redirect, and commands that start programs', () => {
    expect(refused(['s3', 'sync', 'dir', 's3://b/p'])).toBe('run_unsupported');
    expect(refused(['eks', 'update-kubeconfig', '--name', 'c'])).toBe('run_unsupported');
    expect(refused(['ssm', 'start-session', '--target', 'i-0123456789abcdef0'])).toBe('run_unsupported');
  });
});
