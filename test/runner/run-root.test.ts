import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { userRunRoot } from '../../src/runner/sandbox.js';

// A local run's private HOME goes into `<tmp>/guard-aws-<uid>` (so the sweep of killed runs lists only this user's
// HOMEs, not a shared /tmp). In a shared /tmp another user can create that name first: each way of planting it
// must leave the HOME in tmp itself rather than in a directory someone else controls.
const uid = process.getuid!();
const fresh = () => mkdtempSync(join(tmpdir(), 'guard-run-root-'));

describe('the per-user run root', () => {
  it('is created closed to everyone else, and reused', () => {
    const tmp = fresh();
    const root = userRunRoot(tmp);
    expect(root).toBe(join(tmp, `guard-aws-${uid}`));
    const st = lstatSync(root);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(userRunRoot(tmp)).toBe(root);
  });

  it('a symlink planted under the name is not followed', () => {
    const tmp = fresh();
    const elsewhere = fresh();
    symlinkSync(elsewhere, join(tmp, `guard-aws-${uid}`));
    expect(userRunRoot(tmp)).toBe(tmp);
  });

  it('a directory others can write or read is not used', () => {
    const tmp = fresh();
    mkdirSync(join(tmp, `guard-aws-${uid}`));
    chmodSync(join(tmp, `guard-aws-${uid}`), 0o777);
    expect(userRunRoot(tmp)).toBe(tmp);
    chmodSync(join(tmp, `guard-aws-${uid}`), 0o750);
    expect(userRunRoot(tmp)).toBe(tmp);
  });

  it('a file under the name is not used', () => {
    const tmp = fresh();
    writeFileSync(join(tmp, `guard-aws-${uid}`), '');
    expect(userRunRoot(tmp)).toBe(tmp);
  });

  // Only root can make a directory another user owns; CI runs the tests as root.
  it.runIf(uid === 0)("another user's directory is not used", () => {
    const tmp = fresh();
    mkdirSync(join(tmp, `guard-aws-${uid}`), { mode: 0o700 });
    chownSync(join(tmp, `guard-aws-${uid}`), 65534, 65534);
    expect(userRunRoot(tmp)).toBe(tmp);
  });
});
