import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildSessionPolicy, type SessionPolicy } from '../../src/broker/session-policy.js';
import { GuardError } from '../../src/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';

// Every invocation of the shared corpus, parsed by the real parser, gets a session policy that (a) builds or is
// refused as too large — never a crash — and (b) structurally contains only the parser's permission pairs, each
// one of them. The corpus is read from ../shared beside the repository (tests only).
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = readFileSync(resolve(repoRoot, '../shared/corpus/cli-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as { argv: string[] });
const ACCOUNT = '111122223333';
const list = (x: string | string[]) => (Array.isArray(x) ? x : [x]);

describe('session policies for the corpus', () => {
  it('are exactly the parsed permissions for every parseable invocation', () => {
    let built = 0;
    for (const c of corpus) {
      let inv;
      try {
        inv = parseInvocation(c.argv, { account: ACCOUNT, region: 'us-east-1', cwd: '/w', env: { HOME: '/h' }, readFile: () => Buffer.from('{}') });
      } catch (e) {
        expect(e, c.argv.join(' ')).toBeInstanceOf(GuardError);
        continue;
      }
      let json: string;
      try {
        json = buildSessionPolicy(inv.permissions, { resourceAccounts: [ACCOUNT], invocation: null });
      } catch (e) {
        expect((e as GuardError).code, c.argv.join(' ')).toBe('policy_too_large');
        continue;
      }
      built++;
      const doc = JSON.parse(json) as SessionPolicy;
      const want = new Set(inv.permissions.flatMap((p) => p.resources.map((r) => `${p.action} ${r}`)));
      const got = new Set<string>();
      for (const s of doc.Statement) {
        if (s.Effect === 'Deny') {
          expect(inv.permissions, c.argv.join(' ')).toEqual([]);
          continue;
        }
        for (const a of list(s.Action)) for (const r of list(s.Resource)) got.add(`${a} ${r}`);
      }
      // Nothing broader: every allowed pair is a permission pair…
      for (const pair of got) expect(want.has(pair), `${c.argv.join(' ')}: extra ${pair}`).toBe(true);
      // …and every permission pair is allowed (a `*` statement covers the action's specific ARNs).
      for (const pair of want) {
        const [a] = pair.split(' ');
        expect(got.has(pair) || got.has(`${a} *`), `${c.argv.join(' ')}: missing ${pair}`).toBe(true);
      }
    }
    expect(built).toBeGreaterThan(50);
  });
});
