import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/**
 * Compiles one source module and every relative module it imports to plain ESM in a temporary directory, with
 * TypeScript's own transpiler, so the module can run where vitest's loader does not reach: worker threads and
 * child processes (needed to run two real SQLite connections at the same moment).
 */
export function transpileTree(srcRoot: string, entry: string | string[], under = tmpdir()): { dir: string; path: (srcFile: string) => string } {
  // `under`: a directory inside the repository when the modules import packages (resolved from node_modules above it).
  const dir = mkdtempSync(join(under, 'guard-aws-tsc-'));
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    const out = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    }).outputText;
    const target = join(dir, relative(srcRoot, file).replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, out);
    for (const m of source.matchAll(/from\s+'(\.\.?\/[^']+)\.js'/g)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  for (const e of Array.isArray(entry) ? entry : [entry]) visit(resolve(srcRoot, e));
  return { dir, path: (srcFile) => join(dir, relative(srcRoot, resolve(srcRoot, srcFile)).replace(/\.ts$/, '.js')) };
}
