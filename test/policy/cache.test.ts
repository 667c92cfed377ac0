import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decide } from '../../src/policy/decide.js';
import { loadPoliciesCached } from '../../src/policy/load-cached.js';
import { loadPolicies } from '../../src/policy/load.js';
import { input, inv } from './fixtures.js';

const W = { 's3:GetObject': 'Read', 'iam:CreateUser': 'Write' } as const;
const probes = [inv({ perms: [['s3:GetObject', ['arn:aws:s3:::b/k']]], access: W }), inv({ perms: [['iam:CreateUser', ['arn:aws:iam::1:user/u']]], access: W })];

describe('start-up policy cache', () => {
  test('a cached load decides exactly like a fresh one, and a changed file is re-read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-cache-'));
    const cacheDir = join(dir, 'cache');
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'version: 1\ndefault: deny\nrules:\n  - { id: reads, effect: allow, reason: r, match: { access: [Read] } }\n');
    const fresh = loadPolicies([file]);
    const first = await loadPoliciesCached([file], { cacheDir });
    expect(readdirSync(cacheDir)).toHaveLength(1);
    const second = await loadPoliciesCached([file], { cacheDir });
    for (const p of probes) {
      expect(decide(first, input(p))).toEqual(decide(fresh, input(p)));
      expect(decide(second, input(p))).toEqual(decide(fresh, input(p)));
    }
    writeFileSync(file, 'version: 1\ndefault: allow\nrules: []\n');
    expect(decide(await loadPoliciesCached([file], { cacheDir }), input(probes[1]!)).decision).toBe('allow');
  });
  test('a corrupt cache entry is ignored; invalid policies are never cached and still fail with 78', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ga-cache-'));
    const cacheDir = join(dir, 'cache');
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'version: 1\ndefault: deny\nrules: []\n');
    await loadPoliciesCached([file], { cacheDir });
    const [entry] = readdirSync(cacheDir);
    writeFileSync(join(cacheDir, entry!), '{"path": "elsewhere", "spec": {"rules": []}}');
    expect((await loadPoliciesCached([file], { cacheDir })).default.effect).toBe('deny');
    writeFileSync(file, 'version: 1\nrules:\n  - { id: a, effect: permit, reason: r }\n');
    await expect(loadPoliciesCached([file], { cacheDir })).rejects.toMatchObject({ code: 'policy_invalid', message: expect.stringMatching(/p\.yaml:3:\d+: rules\[0\]\.effect/) });
  });
});
