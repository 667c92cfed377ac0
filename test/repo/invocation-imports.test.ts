/**
 * The parser's modules import each other in one direction only (parse.ts → customizations.ts → result.ts, …):
 * a cycle makes module initialisation order matter and hides which half owns what. Type-only imports count
 * too. Scoped to src/invocation/ and src/policy/, the security core this branch reorganised.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function importGraph(folder: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const dir = join(repoRoot, folder);
  for (const name of readdirSync(dir).filter((file) => file.endsWith('.ts'))) {
    const text = readFileSync(join(dir, name), 'utf8');
    const targets: string[] = [];
    for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+'\.\/([\w.-]+)\.js'/g)) targets.push(`${match[1]}.ts`);
    for (const match of text.matchAll(/import\('\.\/([\w.-]+)\.js'\)/g)) targets.push(`${match[1]}.ts`);
    graph.set(name, targets);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'visiting') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return found;
}

describe('no import cycles in the security core', () => {
  it('the cycle finder finds a cycle', () => {
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['a.ts']]]))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
  });
  it.each(['src/invocation', 'src/policy'])('%s', (folder) => {
    const graph = importGraph(folder);
    expect(graph.get('parse.ts') ?? graph.get('decide.ts')).toBeDefined();
    expect([...graph.values()].flat().length).toBeGreaterThan(10); // the scan sees the imports
    expect(cycles(graph)).toEqual([]);
  });
});
