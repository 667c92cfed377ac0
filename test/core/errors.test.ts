import { describe, expect, it } from 'vitest';
import { GuardError, exitCodeFor, oneLine, ERROR_EXIT } from '../../src/errors.js';
import { EXIT } from '../../src/exit-codes.js';
import { detectInteractivity } from '../../src/io/host.js';

describe('errors', () => {
  it('maps codes to the documented exit codes', () => {
    expect(new GuardError('parse', 'x').exitCode).toBe(64);
    expect(new GuardError('auth_rejected', 'x').exitCode).toBe(67);
    expect(new GuardError('broker_unreachable', 'x').exitCode).toBe(69);
    expect(new GuardError('approval_pending', 'x').exitCode).toBe(75);
    expect(new GuardError('denied', 'x').exitCode).toBe(77);
    expect(new GuardError('policy_invalid', 'x').exitCode).toBe(78);
    expect(exitCodeFor(new Error('boom'))).toBe(EXIT.INTERNAL);
  });
  it('every code maps to a documented exit code', () => {
    const documented = new Set<number>(Object.values(EXIT));
    for (const code of Object.values(ERROR_EXIT)) expect(documented.has(code)).toBe(true);
  });
  it('keeps errors on one line', () => {
    expect(oneLine('a\n  b\r\nc')).toBe('a b c');
  });
});

describe('interactivity', () => {
  const base = { stdinIsTTY: true, stderrIsTTY: true };
  it('is interactive on a TTY', () => {
    expect(detectInteractivity({ ...base, env: {} })).toEqual({ interactive: true, color: true });
  });
  it('CI, NO_COLOR, pipes and --no-input switch prompts/colour off', () => {
    expect(detectInteractivity({ ...base, env: { CI: 'true' } })).toEqual({ interactive: false, color: false });
    expect(detectInteractivity({ ...base, env: { NO_COLOR: '' } }).color).toBe(false);
    expect(detectInteractivity({ ...base, stdinIsTTY: false, env: {} }).interactive).toBe(false);
    expect(detectInteractivity({ ...base, env: {}, noInput: true }).interactive).toBe(false);
  });
});
