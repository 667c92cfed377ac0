import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bindingHash } from '../../src/approvals/binding.js';
import { shownParameters } from '../../src/approvals/parameters.js';
import { planRunFiles } from '../../src/broker/run-files.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import type { BlobDigest, InvocationContext } from '../../src/invocation/types.js';
import { blobStandIn, isBlobStandIn } from '../../src/invocation/values.js';
import { compileCondition, evalCondition } from '../../src/policy/conditions.js';
import { decide } from '../../src/policy/decide.js';
import { input } from '../policy/fixtures.js';
import { fromText } from '../policy/helpers.js';

// Large `fileb://` blobs decided on as their digest only (request `blobs`): what the parse reads instead of the
// bytes, and that no policy condition decides on bytes it never saw. The broker's parse, as in src/broker/issue.ts:
// no local files, contents only from `files`, blobs only from `blobs`.
const zip = Buffer.alloc(300 * 1024, 7);
const digest: BlobDigest = { sha256: createHash('sha256').update(zip).digest('hex'), size: zip.length };
const where = { cwd: '/home/alice/work', home: '/home/alice' };
const brokerCtx = (blobs: Record<string, BlobDigest>, files: Record<string, string> = {}): InvocationContext => ({
  account: '123456789012',
  region: 'us-east-1',
  cwd: where.cwd,
  env: { HOME: where.home },
  fileContents: files,
  readFile: () => {
    throw new Error('the broker reads no local file');
  },
  blob: (p) => blobs[p],
});
const update = ['lambda', 'update-function-code', '--function-name', 'fn', '--zip-file', 'fileb://function.zip'];

describe('a blob sent as its digest', () => {
  it('reads as a stand-in naming the digest, and is a local file carrying it', () => {
    const inv = parseInvocation(update, brokerCtx({ '/home/alice/work/function.zip': digest }));
    expect(inv.params.ZipFile).toBe(blobStandIn(digest));
    expect(isBlobStandIn(inv.params.ZipFile)).toBe(true);
    expect(inv.files).toEqual([{ path: '/home/alice/work/function.zip', mode: 'read', argument: '--zip-file', digest }]);
    // Real fileb:// contents are base64: never a stand-in.
    expect(isBlobStandIn(zip.toString('base64'))).toBe(false);
  });

  it('approvers see its digest and real size (what the approval binds and the run is held to)', () => {
    const inv = parseInvocation(update, brokerCtx({ '/home/alice/work/function.zip': digest }));
    const shown = shownParameters(inv).find((p) => p.name === 'ZipFile')!;
    expect(shown).toMatchObject({ source: 'file /home/alice/work/function.zip', encoding: 'digest only', bytes: zip.length, sha256: digest.sha256 });
    expect(shown.value).toContain(digest.sha256);
  });

  it('an approval binds the digest, also where the blob is no API member (create-function --zip-file)', () => {
    const other: BlobDigest = { sha256: 'b'.repeat(64), size: digest.size };
    const argv = ['lambda', 'create-function', '--function-name', 'fn', '--runtime', 'python3.12', '--handler', 'i.h', '--role', 'arn:aws:iam::123456789012:role/r', '--zip-file', 'fileb:///tmp/f.zip'];
    const hash = (d: BlobDigest) => bindingHash({ requester: 'alice', target: 'dev', invocation: parseInvocation(argv, brokerCtx({ '/tmp/f.zip': d })) });
    expect(hash(digest)).toBe(hash({ ...digest }));
    expect(hash(digest)).not.toBe(hash(other));
    const update2 = (d: BlobDigest) => bindingHash({ requester: 'alice', target: 'dev', invocation: parseInvocation(update, brokerCtx({ '/home/alice/work/function.zip': d })) });
    expect(update2(digest)).not.toBe(update2(other));
  });

  it('without the digest (and without contents) the parse refuses, as before', () => {
    expect(() => parseInvocation(update, brokerCtx({}))).toThrow(/was not provided with the request/);
  });

  it('is refused where the decision needs its contents: file://, or a parameter that is not a blob', () => {
    const blobs = { '/home/alice/work/p.json': digest };
    expect(() => parseInvocation(['s3api', 'put-bucket-policy', '--bucket', 'b', '--policy', 'file://p.json'], brokerCtx(blobs))).toThrow(/sent as a digest only/);
    expect(() => parseInvocation(['s3api', 'put-bucket-policy', '--bucket', 'b', '--policy', 'fileb://p.json'], brokerCtx(blobs))).toThrow(/sent as a digest only/);
  });

  it('on the broker, it is an input the caller uploads, checked against the digest, read by aws as fileb://', () => {
    const inv = parseInvocation(update, brokerCtx({ '/home/alice/work/function.zip': digest }));
    const plan = planRunFiles(inv, new Set(), where);
    expect(plan.inputs).toEqual([5]);
    expect(plan.digests?.get(5)).toEqual(digest);
    // create-function's --zip-file (a CLI argument that becomes Code.ZipFile) goes the same way.
    const create = parseInvocation(
      ['lambda', 'create-function', '--function-name', 'fn', '--runtime', 'python3.12', '--handler', 'i.h', '--role', 'arn:aws:iam::123456789012:role/r', '--zip-file', 'fileb:///tmp/f.zip'],
      brokerCtx({ '/tmp/f.zip': digest }),
    );
    expect(create.files).toEqual([{ path: '/tmp/f.zip', mode: 'read', argument: '--zip-file', digest }]);
    expect(planRunFiles(create, new Set(), where).digests?.get(11)).toEqual(digest);
  });
});

describe('policy conditions never decide on a blob they did not see', () => {
  const standIn = { ZipFile: blobStandIn(digest) };
  it('a restrictive rule matches it whatever the operator; an allow rule never does', () => {
    for (const spec of [{ equals: 'x' }, { contains: 'PK' }, { glob: ['nothing*'] }, { in: ['a'] }, { ge: 5 }]) {
      expect(evalCondition(compileCondition({ path: 'ZipFile', ...spec }, true), standIn, true, {}), JSON.stringify(spec)).toBe(true);
      expect(evalCondition(compileCondition({ path: 'ZipFile', ...spec }, false), standIn, false, {}), JSON.stringify(spec)).toBe(false);
      expect(evalCondition(compileCondition({ path: '**', ...spec }, false), standIn, false, {}), JSON.stringify(spec)).toBe(false);
    }
    // Whether the member is there does not depend on its bytes.
    expect(evalCondition(compileCondition({ path: 'ZipFile', exists: true }, false), standIn, false, {})).toBe(true);
  });

  it('end to end with the parser: a deny on the zip contents refuses a digest-only zip; an allow on them does not allow it', () => {
    const deny = fromText(`version: 1
default: allow
rules:
  - id: no-marked-zips
    effect: deny
    reason: zips with the marker are refused
    match:
      actions: ['lambda:UpdateFunctionCode']
      params: [{ path: ZipFile, contains: 'MARKER' }]
`);
    const allowOnly = fromText(`version: 1
default: deny
rules:
  - id: only-this-zip
    effect: allow
    reason: only this zip
    match:
      actions: ['lambda:UpdateFunctionCode']
      params: [{ path: ZipFile, glob: ['*'] }]
`);
    const digestOnly = parseInvocation(update, brokerCtx({ '/home/alice/work/function.zip': digest }));
    expect(decide(deny, input(digestOnly)).decision).toBe('deny');
    expect(decide(allowOnly, input(digestOnly)).decision).toBe('deny');
    // With its contents (the request without blobs), the rules decide as before.
    const small = Buffer.from('small zip').toString('latin1');
    const withContents = parseInvocation(update, brokerCtx({}, { '/home/alice/work/function.zip': small }));
    expect(decide(deny, input(withContents)).decision).toBe('allow');
    expect(decide(allowOnly, input(withContents)).decision).toBe('allow');
  });
});
