import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The import graph of src/, read with the TypeScript parser (static imports, `import type`, re-exports and
// dynamic `import()`), checked against the "Who may import whom" table in docs/architecture.md.
const repo = resolve(__dirname, '../..');
const src = join(repo, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative module specifiers of one file (package imports are not part of the layering). */
function importsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      specs.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs.filter((s) => s.startsWith('.'));
}

const rel = (abs: string) => relative(src, abs).split(sep).join('/');
/** `broker/routes/grants.ts` → `broker`; `errors.ts` → `.` */
const folderOf = (relPath: string) => (relPath.includes('/') ? relPath.slice(0, relPath.indexOf('/')) : '.');

const files = sourceFiles(src).map(rel).sort();
const unresolved: string[] = [];
const graph = new Map<string, string[]>(
  files.map((f) => [
    f,
    importsOf(join(src, f)).map((spec) => {
      const target = rel(resolve(dirname(join(src, f)), spec).replace(/\.js$/, '.ts'));
      if (!existsSync(join(src, target))) unresolved.push(`${f} → ${spec}`);
      return target;
    }),
  ]),
);

/** The "Who may import whom" table: folder → the folders it may import. */
function allowedTable(): Map<string, Set<string>> {
  const doc = readFileSync(join(repo, 'docs/architecture.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Who may import whom'));
  const table = new Map<string, Set<string>>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]!.startsWith('`')) continue;
    const names = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    table.set(names(cells[1]!)[0]!, new Set(names(cells[2]!)));
  }
  return table;
}

/** Strongly connected components with more than one module (Tarjan): each one is an import cycle. */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) connect(v);
  return found;
}

describe('the import graph of src/ (docs/architecture.md)', () => {
  it('resolves every relative import to a file', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(unresolved).toEqual([]);
  });

  it('has no import cycle between modules', () => {
    expect(cycles(graph).map((c) => c.join(' ↔ '))).toEqual([]);
  });

  it('the table names every folder of src/, and the table itself has no cycle', () => {
    const table = allowedTable();
    expect([...new Set(files.map(folderOf))].filter((f) => !table.has(f))).toEqual([]);
    for (const [folder, deps] of table) for (const d of deps) expect(table.has(d), `${folder} → ${d}: not a folder of the table`).toBe(true);
    const folders = new Map([...table].map(([f, deps]) => [f, [...deps]]));
    expect(cycles(folders)).toEqual([]);
  });

  it('every import between folders is one the table allows', () => {
    const table = allowedTable();
    const against: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const [a, b] = [folderOf(from), folderOf(to)];
        if (a !== b && !table.get(a)?.has(b)) against.push(`${from} → ${to} (${a} may not import ${b})`);
      }
    }
    expect(against).toEqual([]);
  });

  it('catches what it claims to: a back edge and a cycle are reported', () => {
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]))).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    const table = allowedTable();
    expect(table.get('api')?.has('broker')).toBe(false);
    expect(table.get('approvals')?.has('broker')).toBe(false);
    expect(table.get('broker')?.has('approvals')).toBe(true);
  });
});
