import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { MASK, StreamMasker, compileMasking, maskText, createMaskingStream } from '../../src/masking/index.js';
import { isGuardError } from '../../src/errors.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJGMEQCIBz9hGn+ZkH3Qq8ZVQ2bS6s9y0lS5uPq==';

function maskChunked(compiled: ReturnType<typeof compileMasking>, input: Buffer, cuts: number[]): Buffer {
  const m = new StreamMasker(compiled);
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (c <= at || c >= input.length) continue;
    out.push(m.push(input.subarray(at, c)));
    at = c;
  }
  out.push(m.push(input.subarray(at)), m.end());
  return Buffer.concat(out);
}

describe('key-aware masking of JSON output', () => {
  const c = compileMasking();
  test.each([
    ['SecretAccessKey', SECRET],
    ['SessionToken', TOKEN],
    ['SecretString', '{"username":"app","password":"hunter2-hunter2"}'],
    ['SecretBinary', 'aHVudGVyMi1odW50ZXIy'],
    ['Password', 'Tr0ub4dor&3'],
    ['PrivateKey', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC'],
    ['Plaintext', 'c2VjcmV0LWRhdGEta2V5'],
    ['authorizationToken', 'QVdTOmV5SndZWGxzYjJGa0lqb2lNV'],
    ['secretAccessKey', SECRET],
  ])('%s', (key, value) => {
    const doc = `{\n    "${key}": ${JSON.stringify(value)},\n    "Name": "kept"\n}\n`;
    const out = maskText(c, doc);
    expect(out).toBe(`{\n    "${key}": "${MASK}",\n    "Name": "kept"\n}\n`);
  });

  test('escaped quotes and backslashes inside a secret string do not end the mask early', () => {
    const v = JSON.stringify('a"b\\"; "Name": "x\u0022 \\');
    const out = maskText(c, `{"SecretString": ${v}, "Name": "n"}`);
    expect(out).toBe(`{"SecretString": "${MASK}", "Name": "n"}`);
  });

  test('SSM SecureString values are masked, String values are not', () => {
    const doc = JSON.stringify(
      { Parameters: [{ Name: 'a', Type: 'SecureString', Value: 'db-password-1' }, { Name: 'b', Type: 'String', Value: 'public' }] },
      null,
      4,
    );
    const out = maskText(c, doc);
    expect(out).not.toContain('db-password-1');
    expect(out).toContain('"Value": "public"');
  });

  test('STS credentials: the secret and the token are masked, the key id and expiry are kept', () => {
    const doc = JSON.stringify({ Credentials: { AccessKeyId: 'ASIAIOSFODNN7EXAMPLE', SecretAccessKey: SECRET, SessionToken: TOKEN, Expiration: '2026-01-01T00:00:00Z' } }, null, 4);
    const out = maskText(c, doc);
    expect(out).toContain('ASIAIOSFODNN7EXAMPLE');
    expect(out).toContain('2026-01-01T00:00:00Z');
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(TOKEN.slice(0, 30));
  });

  test('extra fields from policy files extend the built-ins (case-insensitive)', () => {
    const cc = compileMasking({ rules: { fields: ['ApiKey'], patterns: [] } });
    expect(maskText(cc, '{"apikey": "k-123456789"}')).toBe(`{"apikey": "${MASK}"}`);
  });
});

describe('pattern-aware masking of any text', () => {
  const c = compileMasking();
  test('PEM private keys (multi-line and JSON-escaped)', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75\nabcDEF==\n-----END RSA PRIVATE KEY-----'; // test fixture: a fake, truncated key
    expect(maskText(c, `key:\n${pem}\ndone`)).toBe(`key:\n-----BEGIN RSA PRIVATE KEY-----${MASK}-----END RSA PRIVATE KEY-----\ndone`); // test fixture: a fake, truncated key
    const escaped = JSON.stringify({ Note: `x ${pem} y` });
    const out = maskText(c, escaped);
    expect(out).not.toContain('MIIEpAIBAAKCAQEA75');
    expect(out).toContain('-----END RSA PRIVATE KEY----- y');
    expect(maskText(c, '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----')).not.toContain('b3BlbnNzaC1rZXk'); // test fixture: a fake, truncated key
  });
  test('public certificates are not masked', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n';
    expect(maskText(c, cert)).toBe(cert);
  });
  test('an access key id with its secret (text output, CSV, env)', () => {
    expect(maskText(c, `ACCESSKEY\tAKIAIOSFODNN7EXAMPLE\t2026-11-25T17:00:00Z\t${SECRET}\tActive\talice\n`)).toBe(
      `ACCESSKEY\tAKIAIOSFODNN7EXAMPLE\t2026-11-25T17:00:00Z\t${MASK}\tActive\talice\n`,
    );
    expect(maskText(c, `alice,AKIAIOSFODNN7EXAMPLE,${SECRET}\n`)).toBe(`alice,AKIAIOSFODNN7EXAMPLE,${MASK}\n`);
    expect(maskText(c, `aws_secret_access_key = ${SECRET}\n`)).toBe(`aws_secret_access_key = ${MASK}\n`);
    expect(maskText(c, `AWS_SESSION_TOKEN=${TOKEN}\n`)).toBe(`AWS_SESSION_TOKEN=${MASK}\n`);
  });
  test('session tokens by prefix, anywhere', () => {
    expect(maskText(c, `token ${TOKEN} end`)).toBe(`token ${MASK} end`);
  });
  test('presigned URLs and RDS auth tokens keep their shape but lose signature and token', () => {
    const url =
      'db.example.com:5432/?Action=connect&DBUser=app&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAIOSFODNN7EXAMPLE%2F20261125%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20261125T180000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=IQoJb3JpZ2luX2VjE%2Fabc%2Bdef%3D&X-Amz-Signature=4f1c0a7e9b2d3c4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789\n';
    const out = maskText(c, url);
    expect(out).toContain('X-Amz-Security-Token=<masked>&X-Amz-Signature=<masked>\n');
    expect(out).not.toContain('4f1c0a7e9b2d');
    expect(out).toContain('DBUser=app');
  });
  test('SigV2 presigned URLs (s3 presign on path-style endpoints)', () => {
    const u = 'http://127.0.0.1:5000/b/k?AWSAccessKeyId=ASIARZPUZDIKKBTXMPMQ&Signature=37DA19HBkciLTH7WcgQZqaZMitw%3D&x-amz-security-token=abc%2Fdef&Expires=1795630870\n';
    expect(maskText(c, u)).toBe(`http://127.0.0.1:5000/b/k?AWSAccessKeyId=ASIARZPUZDIKKBTXMPMQ&Signature=${MASK}&x-amz-security-token=${MASK}&Expires=1795630870\n`);
    expect(maskText(c, 'a Signature= in prose\n')).toBe('a Signature= in prose\n');
  });
  test('eks get-token bearer token', () => {
    const out = maskText(c, '{"status": {"token": "k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u"}}');
    expect(out).toBe(`{"status": {"token": "k8s-aws-v1.${MASK}"}}`);
  });
  test('known values (the run\'s own credentials), also URL-encoded', () => {
    const cc = compileMasking({ knownSecrets: [SECRET, 'tok/en+with=chars'] });
    expect(maskText(cc, `a ${SECRET} b tok%2Fen%2Bwith%3Dchars c`)).toBe(`a ${MASK} b ${MASK} c`);
  });
  test('custom patterns from policy files', () => {
    const cc = compileMasking({ rules: { fields: [], patterns: ['ghp_[A-Za-z0-9]{36}'] } });
    const tok = 'ghp_' + 'a1B2'.repeat(9);
    expect(maskText(cc, `token=${tok};`)).toBe(`token=${MASK};`);
  });
  test('bad custom patterns and fields are refused with policy_invalid', () => {
    for (const rules of [
      { fields: [], patterns: ['('] },
      { fields: [], patterns: ['a*'] },
      { fields: [], patterns: ['é'] },
      { fields: ['a"b'], patterns: [] },
    ]) {
      let err: unknown;
      try {
        compileMasking({ rules });
      } catch (e) {
        err = e;
      }
      expect(isGuardError(err) && err.code).toBe('policy_invalid');
    }
  });
  test('the mask does not reveal the length of what it hides', () => {
    expect(maskText(c, '{"Password": "a"}')).toBe(maskText(c, `{"Password": "${'a'.repeat(5000)}"}`));
  });
});

describe('a secret inside the span between an access key id and its 40-character secret', () => {
  // Found by the CI run of the presigned-URL e2e test (1 run in ~30): X-Amz-Credential carries the key id, and the
  // URL-encoded session token after it can hold a 40-character alphanumeric run between two %2F escapes. The
  // key-id-then-secret rule matched from the key id to that run and emitted what lay between verbatim, so the
  // X-Amz-Security-Token opener inside it was never seen and most of the token went out unmasked.
  const token = 'FQoGZXIvYXdzEBYaDXOqBqzdt8//Uw9KgzgtzfX7UNLIA1bZ5l54yzmblW7hCTysDSmJniGpLqftuIhi5V/At73sAEzZBSchDG/h9o1qQRERMkcgIh32lAcPKro4sNsl0plN1iiwc/zFKepMOviwoxzbiHbeRDNKyxg5Hu88BMXyfeTahqEGHlwh1L5NVryjcN9+wUM7jw';
  const url = `https://db:5432/?Action=connect&X-Amz-Credential=ASIARZPUZDIKFBIKYF7W%2F20261130%2Fus-east-1&X-Amz-SignedHeaders=host&X-Amz-Security-Token=${encodeURIComponent(token)}&X-Amz-Signature=abcdef0123\n`;
  test('the token is masked whole, with or without the token known, at every chunk boundary', () => {
    for (const known of [[], [token]]) {
      const c = compileMasking({ knownSecrets: known });
      const whole = maskText(c, url);
      expect(whole).toContain(`X-Amz-Security-Token=${MASK}&X-Amz-Signature=${MASK}`);
      expect(whole).toContain('X-Amz-Credential=ASIARZPUZDIKFBIKYF7W%2F20261130');
      const bytes = Buffer.from(url);
      for (let cut = 1; cut < bytes.length; cut += 7) expect(maskChunked(c, bytes, [cut, cut + 50]).toString()).toBe(whole);
    }
  });
  test('the key id and its secret: the secret is still masked, and so is a secret between them', () => {
    const c = compileMasking();
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'; // the AWS documentation example
    expect(maskText(c, `AKIAIOSFODNN7EXAMPLE\t${secret}\n`)).toBe(`AKIAIOSFODNN7EXAMPLE\t${MASK}\n`);
    const between = `AKIAIOSFODNN7EXAMPLE aws_session_token=FwoGZXIvYXdzEXAMPLETOKEN ${secret}\n`;
    const out = maskText(c, between);
    expect(out).not.toContain('FwoGZXIvYXdzEXAMPLETOKEN');
    expect(out).not.toContain(secret);
    expect(out.startsWith('AKIAIOSFODNN7EXAMPLE')).toBe(true);
  });
});

describe('output without secrets is unchanged, byte for byte', () => {
  const c = compileMasking({ knownSecrets: [SECRET, TOKEN] });
  test('ordinary JSON, text and table output', () => {
    const samples = [
      JSON.stringify({ UserId: 'AIDAEXAMPLE', Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/alice', NextToken: 'eyJ2IjoxfQ==' }, null, 4) + '\n',
      'ACCESSKEYMETADATA\tAKIAIOSFODNN7EXAMPLE\t2026-11-25T17:00:00Z\tActive\talice\n',
      '-----------------\n|  ListBuckets  |\n+---------------+\n',
      'git sha 3f786850e387550fdab836ed7e6dc881de23001b is 40 hex\n',
      '{"Type": "String", "Value": "plain"}',
    ];
    for (const s of samples) expect(maskText(c, s)).toBe(s);
  });
  test('arbitrary binary bytes pass through unchanged', () => {
    for (let i = 0; i < 20; i++) {
      const b = randomBytes(10_000 + i * 997);
      expect(maskChunked(c, b, [1, 4096, 5000, 9999]).equals(b)).toBe(true);
    }
  });
});

describe('chunk boundaries never change the result or let a secret through', () => {
  const secrets = [SECRET, TOKEN, 'hunter2-hunter2-hunter2', 'MIIEpAIBAAKCAQEA75', 'db-password-1', '4f1c0a7e9b2d3c4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789', 'known-value-xyz-123'];
  const doc = Buffer.from(
    [
      JSON.stringify({ Credentials: { AccessKeyId: 'ASIAIOSFODNN7EXAMPLE', SecretAccessKey: SECRET, SessionToken: TOKEN } }, null, 4),
      JSON.stringify({ SecretString: '{"password":"hunter2-hunter2-hunter2"}', Name: 'n' }),
      '-----BEGIN PRIVATE KEY-----\nMIIEpAIBAAKCAQEA75\n-----END PRIVATE KEY-----', // test fixture: a fake, truncated key
      JSON.stringify({ Parameter: { Name: 'p', Type: 'SecureString', Value: 'db-password-1' } }, null, 2),
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=4f1c0a7e9b2d3c4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789&x=1',
      'echo known-value-xyz-123 and caf\u00e9 \u2603 unicode',
      `CREDENTIALS\tASIAIOSFODNN7EXAMPLE\t2026\t${SECRET}\n`,
    ].join('\n'),
    'utf8',
  );
  const c = compileMasking({ knownSecrets: ['known-value-xyz-123'] });
  const whole = maskChunked(c, doc, []);

  test('the whole document is masked as expected', () => {
    const s = whole.toString('utf8');
    for (const sec of secrets) expect(s).not.toContain(sec);
    expect(s).toContain('caf\u00e9 \u2603 unicode');
    expect(s).toContain('"AccessKeyId": "ASIAIOSFODNN7EXAMPLE"');
  });

  test('property: any chunking gives identical output', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: doc.length - 1 }), { maxLength: 40 }), (cuts) => {
        const out = maskChunked(c, doc, cuts);
        expect(out.equals(whole)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('byte-at-a-time feeding gives identical output', () => {
    const cuts = Array.from({ length: doc.length - 1 }, (_, i) => i + 1);
    expect(maskChunked(c, doc, cuts).equals(whole)).toBe(true);
  });

  test('property: a secret value placed anywhere, chunked anywhere, never survives', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('SecretAccessKey', 'SessionToken', 'Password', 'SecretString'),
        fc.stringMatching(/^[A-Za-z0-9/+=]{12,200}$/),
        fc.string({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (key, value, filler, rawCuts) => {
          const text = Buffer.from(`${filler.replace(/"/g, '')}\n{"${key}": "${value}", "x": 1}\n${filler.replace(/"/g, '')}`, 'utf8');
          const out = maskChunked(compileMasking(), text, rawCuts.map((n) => n % text.length)).toString('utf8');
          expect(out).not.toContain(`"${value}"`);
          expect(out).toContain(`"${key}": "${MASK}"`);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('rules skipped for want of their anchor character (issue 14)', () => {
  test('an opener whose anchor arrives in a later chunk, cut at every position, is still masked', () => {
    const c = compileMasking();
    // The first part has neither a double quote nor an underscore, so both anchored rules skip their RegExps there.
    const filler = 'SECRETLIST\tarn:aws:secretsmanager:us-east-1:123456789012:secret:app\tkept text\n'.repeat(3);
    const doc = Buffer.from(`${filler}{"SecretAccessKey": "${SECRET}"}\nAWS_SECRET_ACCESS_KEY=${SECRET}\n`);
    const expected = `${filler}{"SecretAccessKey": "${MASK}"}\nAWS_SECRET_ACCESS_KEY=${MASK}\n`;
    for (let cut = 1; cut < doc.length; cut++) {
      expect(maskChunked(c, doc, [cut]).toString('latin1'), `cut at ${cut}`).toBe(expected);
      expect(maskChunked(c, doc, [cut, cut + 7, cut + 31]).toString('latin1'), `cuts at ${cut}+`).toBe(expected);
    }
  });
});

describe('memory stays bounded', () => {
  test('a huge secret string and a huge ordinary line are streamed without growing the carry-over', () => {
    const c = compileMasking();
    const m = new StreamMasker(c);
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let out = m.push('{"SecretString": "');
    for (let i = 0; i < 200; i++) out = Buffer.concat([out.subarray(0, 0), m.push(chunk)]);
    expect((m as unknown as { buf: string }).buf.length).toBeLessThan(c.carry + 128);
    const tail = Buffer.concat([m.push('", "Name": "n"}'), m.end()]).toString();
    expect(tail).toBe('", "Name": "n"}');
    for (let i = 0; i < 200; i++) m.push(chunk);
    expect((m as unknown as { buf: string }).buf.length).toBeLessThan(c.carry + 128);
  });

  test('the Transform stream masks across writes', async () => {
    const t = createMaskingStream(compileMasking());
    const parts: Buffer[] = [];
    t.on('data', (b: Buffer) => parts.push(b));
    const done = new Promise((r) => t.on('end', r));
    t.write('{"Passw');
    t.write('ord": "se');
    t.end('cret"}');
    await done;
    expect(Buffer.concat(parts).toString()).toBe(`{"Password": "${MASK}"}`);
  });
});

describe('flushLines: a quiet stream gets its complete lines out (logs tail --follow)', () => {
  const compiled = compileMasking({ knownSecrets: [SECRET] });
  test('a short line held as look-ahead comes out on flush; the partial line after it stays held', () => {
    const m = new StreamMasker(compiled);
    const first = m.push('2026-11-30T15:57:00 s first-event\npartial');
    expect(first.toString()).toBe(''); // shorter than the look-ahead: nothing is final yet
    expect(m.flushLines().toString()).toBe('2026-11-30T15:57:00 s first-event\n');
    expect(m.flushLines().toString()).toBe('');
    expect(Buffer.concat([m.push(' rest\n'), m.end()]).toString()).toBe('partial rest\n');
  });
  test('a secret on a flushed line is still masked, and one split across two writes inside a line is never cut', () => {
    const key = SECRET;
    const m = new StreamMasker(compiled);
    const out = [m.push(`id ${key}\n`), m.flushLines()];
    expect(Buffer.concat(out).toString()).toBe(`id ${MASK}\n`);
    const n = new StreamMasker(compiled);
    const parts = [n.push(`id ${key.slice(0, 8)}`), n.flushLines(), n.push(`${key.slice(8)}\n`), n.flushLines(), n.end()];
    expect(Buffer.concat(parts).toString()).toBe(`id ${MASK}\n`);
  });
  test('flushing at any point never changes the masked result (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constant(SECRET), fc.constant(`"SecretAccessKey": "${SECRET}"`), fc.constant('\n'), fc.string({ maxLength: 20 })), { maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 30 }), (parts, flushes) => {
        const text = parts.join('');
        const expected = maskText(compiled, text);
        const m = new StreamMasker(compiled);
        const out: Buffer[] = [];
        parts.forEach((p, i) => {
          out.push(m.push(p));
          if (flushes[i]) out.push(m.flushLines());
        });
        out.push(m.end());
        expect(Buffer.concat(out).toString()).toBe(expected);
      }),
    );
  });
});
