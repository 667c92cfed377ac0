import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InvocationContext } from '../../src/invocation/types.js';

/**
 * The shared corpus of real invocations (../shared/corpus/cli-cases.jsonl, beside the repository — CI lays it out
 * the same way). Read by tests only; guard-aws never needs it at run time.
 */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const corpusPath = resolve(repoRoot, '../shared/corpus/cli-cases.jsonl');

export interface CorpusCase {
  argv: string[];
  actions: string[];
  resources: string[];
  suggested: 'allow' | 'approve' | 'deny';
  expect?: 'api_call' | 'no_api_call' | 'cli_error';
  cli_version?: 'v2';
}

export function corpusCases(): CorpusCase[] {
  return readFileSync(corpusPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CorpusCase);
}

/** Contents for the files the corpus names (it only names them), as they would be on the caller's machine. */
export const CORPUS_FILES: Record<string, string> = {
  'input.json': '{"Bucket":"hidden-bucket","Prefix":"x/"}',
  'policy.json': '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}',
  'trust.json': '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
  'secret-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'key-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'repo-policy.json': '{"Version":"2012-10-17","Statement":[]}',
  'secret.enc': 'ciphertext',
  'function.zip': 'PK',
  'credentials': '[default]\naws_access_key_id = AKIAEXAMPLE\n',
};

/** The corpus's context: account 111122223333, us-east-1, the fixture files above. */
export function corpusContext(c: Pick<CorpusCase, 'cli_version'>): InvocationContext {
  return {
    account: '111122223333',
    region: 'us-east-1',
    cwd: '/work/project',
    env: { HOME: '/home/agent' },
    readFile: (p: string) => {
      const base = p.split('/').pop()!;
      if (CORPUS_FILES[base] === undefined) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return Buffer.from(CORPUS_FILES[base]!);
    },
    ...(c.cli_version === 'v2' ? { cliVersion: 'v2' as const } : {}),
  };
}
