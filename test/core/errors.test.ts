import { describe, expect, it } from 'vitest';
import { GuardError, exitCodeFor, oneLine, ERRORS, type ErrorCode } from '../../src/errors.js';
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
    for (const { exit } of Object.values(ERRORS)) expect(documented.has(exit)).toBe(true);
  });
  it('error codes are a closed list: a typo does not compile (checked by `npm run typecheck`)', () => {
    // @ts-expect-error 'no_such_code_typo' is not an ErrorCode
    const typo = new GuardError('no_such_code_typo', 'x');
    // At run time an unknown code (only reachable through a cast) is a bug: 70, never a silent 0.
    expect(typo.exitCode).toBe(EXIT.INTERNAL);
    const code: ErrorCode = 'usage';
    expect(new GuardError(code, 'x').exitCode).toBe(EXIT.USAGE);
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
