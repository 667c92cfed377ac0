import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The policies shipped with the package (src/policy and dist/policy are both two levels below the root). */
export function packagePoliciesDir(): string {
  return fileURLToPath(new URL('../../policies/', import.meta.url));
}

/** policies/default.yaml of the package, wherever it is installed — never relative to the working directory. */
export function defaultPolicyPath(): string {
  return join(packagePoliciesDir(), 'default.yaml');
}

const isTestFile = (f: string) => f.endsWith('.test.yaml') || f.endsWith('.test.yml');
const isYaml = (f: string) => f.endsWith('.yaml') || f.endsWith('.yml');

function walk(dir: string, want: (f: string) => boolean, recursive: boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (recursive) out.push(...walk(p, want, recursive));
    } else if (want(e.name)) out.push(p);
  }
  return out;
}

/**
 * Files named on the command line (directories expand to the policy or test files inside them, recursively),
 * or by default those under `./policies` — or the shipped ones when the working directory has no policies/.
 */
export function expandPaths(args: string[], cwd: string, kind: 'policy' | 'test'): string[] {
  const want = kind === 'test' ? isTestFile : (f: string) => isYaml(f) && !isTestFile(f);
  if (args.length === 0) {
    const local = resolve(cwd, 'policies');
    const dir = existsSync(local) && statSync(local).isDirectory() ? local : packagePoliciesDir();
    // Policies: the top level (the files a broker would load); tests: everything below.
    const files = walk(dir, want, kind === 'test');
    return files.map((f) => (f.startsWith(cwd) ? relative(cwd, f) : f));
  }
  // A directory holds the policies a broker would load together (its top level) or, for tests, every test
  // file below it. Each file is taken once, in the order first named.
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (f: string) => {
    const abs = resolve(cwd, f);
    if (seen.has(abs)) return;
    seen.add(abs);
    out.push(f);
  };
  for (const a of args) {
    const p = resolve(cwd, a);
    if (existsSync(p) && statSync(p).isDirectory()) walk(p, want, kind === 'test').forEach((f) => add(f.startsWith(cwd) ? relative(cwd, f) : f));
    else add(a);
  }
  return out;
}
