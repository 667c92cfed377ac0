import { expect } from 'vitest';
import { GuardError } from '../../src/errors.js';

/** Awaits a promise that must fail with a GuardError, and returns that error for further assertions. */
export async function rejection(p: Promise<unknown>): Promise<GuardError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(GuardError);
    return e as GuardError;
  }
  throw new Error('expected a GuardError');
}
