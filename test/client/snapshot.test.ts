import { existsSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { snapshotFiles } from '../../src/client/snapshot.js';
import { GuardError } from '../../src/errors.js';

const ctx = { cwd: '/work/dir', env: { HOME: '/home/agent', POLICY: '/etc/p.json' } };

describe('snapshotFiles', () => {
  it('rewrites every file:// value to a private copy holding the bytes the broker decided on', () => {
    const decided = Buffer.from('{"Statement":[]}');
    const read = new Map([['/home/agent/policy.json', decided]]);
    const s = snapshotFiles(['s3api', 'put-bucket-policy', '--bucket', 'b', '--policy', 'file://~/policy.json'], read, ctx);
    try {
      const tok = s.argv[5]!;
      expect(tok.startsWith(`file://${s.dir}/`)).toBe(true);
      const copy = tok.slice('file://'.length);
      // The copy, not the caller's file: swapping the original afterwards changes nothing.
      expect(readFileSync(copy)).toEqual(decided);
      expect(statSync(copy).mode & 0o777).toBe(0o600);
      expect(statSync(s.dir!).mode & 0o777).toBe(0o700);
      expect(s.argv.slice(0, 5)).toEqual(['s3api', 'put-bucket-policy', '--bucket', 'b', '--policy']);
    } finally {
      s.cleanup();
    }
    expect(existsSync(s.dir!)).toBe(false);
  });

  it('keeps fileb:// binary bytes exact, expands $VAR and relative paths as the parser did', () => {
    const bin = Buffer.from([0, 255, 1, 254]);
    const read = new Map([
      ['/etc/p.json', Buffer.from('{}')],
      ['/work/dir/blob.bin', bin],
    ]);
    const s = snapshotFiles(['x', 'y', '--a', 'file://$POLICY', '--b', 'fileb://blob.bin'], read, ctx);
    try {
      expect(s.argv[3]).toMatch(/^file:\/\//);
      expect(s.argv[5]).toMatch(/^fileb:\/\//);
      expect(readFileSync(s.argv[5]!.slice('fileb://'.length))).toEqual(bin);
    } finally {
      s.cleanup();
    }
  });

  it('refuses a read it cannot pin (shorthand key@=file://) instead of letting aws read the file again', () => {
    const read = new Map([['/work/dir/user-data.txt', Buffer.from('x')]]);
    expect(() => snapshotFiles(['ec2', 'run-instances', '--launch-template', 'UserData@=file://user-data.txt'], read, ctx)).toThrow(GuardError);
  });

  it('changes nothing when no file was read', () => {
    const s = snapshotFiles(['s3', 'ls'], new Map(), ctx);
    expect(s.argv).toEqual(['s3', 'ls']);
    expect(s.dir).toBeNull();
  });
});
