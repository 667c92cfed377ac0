import { describe, expect, it } from 'vitest';
import { BROKER_ERROR_CODES, BROKER_ONLY_ERRORS, LEGACY_WIRE_CODES, clientCode, httpStatus, wireCode } from '../../src/api/errors.js';
import { ApiError } from '../../src/api/http-error.js';
import { brokerError } from '../../src/api/broker-client.js';
import { ERRORS, GuardError } from '../../src/errors.js';

describe('the broker wire vocabulary', () => {
  it('names each code once, with one status', () => {
    expect(new Set(BROKER_ERROR_CODES).size).toBe(BROKER_ERROR_CODES.length);
    for (const code of Object.keys(BROKER_ONLY_ERRORS)) expect(Object.hasOwn(ERRORS, code), code).toBe(false);
    for (const code of BROKER_ERROR_CODES) expect(httpStatus(code)).toBeGreaterThanOrEqual(400);
  });
  it('an ApiError takes its status from its code', () => {
    expect(new ApiError('denied', 'no').status).toBe(403);
    expect(new ApiError('not_found', 'no').status).toBe(404);
    expect(new ApiError('approval_closed', 'no').status).toBe(409);
    // @ts-expect-error 'record_not_found' is an old spelling the broker no longer writes
    const old = new ApiError('record_not_found', 'no');
    expect(old.status).toBe(500);
  });
  it('a GuardError the broker answers with keeps its code; usage goes out as bad_request; internal never shows', () => {
    expect(ApiError.fromGuardError(new GuardError('self_approval', 'x'))?.body().error.code).toBe('self_approval');
    expect(ApiError.fromGuardError(new GuardError('usage', 'comment too long'))?.body().error).toEqual({ code: 'bad_request', message: 'comment too long' });
    expect(ApiError.fromGuardError(new GuardError('internal', 'db path /secret'))).toBeUndefined();
    expect(ApiError.fromGuardError(new GuardError('auth_required', 'x'))).toBeUndefined();
  });
  it('a client still understands the codes older brokers wrote, with the same exit codes', () => {
    for (const [old, now] of Object.entries(LEGACY_WIRE_CODES)) expect(wireCode(old)).toBe(now);
    expect(brokerError(404, { code: 'grant_not_found' as never, message: 'no grant' }).exitCode).toBe(64);
    expect(brokerError(400, { code: 'invalid_request' as never, message: 'bad header' }).exitCode).toBe(64);
    expect(brokerError(400, { code: 'usage' as never, message: 'comment too long' }).code).toBe('usage');
    expect(wireCode('no_such_code')).toBeUndefined();
  });
  it('every wire code maps to the GuardError, and exit code, a client reports', () => {
    const exits = Object.fromEntries(BROKER_ERROR_CODES.map((c) => [c, ERRORS[clientCode(c)].exit]));
    expect(exits).toMatchObject({ denied: 77, approval_required: 77, approval_expired: 75, approval_pending: 75, bad_request: 64, unparseable: 64, not_found: 64, invalid_token: 67, idp_unreachable: 69, sts_failed: 69 });
    expect([brokerError(409, { code: 'approval_closed', message: 'withdrawn' }).code, brokerError(403, { code: 'policy_too_large', message: 'big' }).exitCode]).toEqual(['approval_closed', 77]);
  });
  it('a code this version does not know is judged by its status', () => {
    const e = (status: number) => brokerError(status, { code: 'from_the_future' as never, message: 'm' });
    expect([e(403).code, e(409).code, e(502).code]).toEqual(['denied', 'usage', 'broker_unreachable']);
  });
});
