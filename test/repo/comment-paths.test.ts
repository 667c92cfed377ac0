/**
 * Comments may only point at things in the repository: every `src/…`, `test/…`, `docs/…`, `bench/…` or
 * `scripts/…` path quoted in a comment under src/ and test/ exists, every `*.test.ts` named in one is a test
 * file of this repository, and a `docs/*.md §N` citation names a section that document has. Comments that
 * cite documents outside the repository or files that were never written are how a codebase stops explaining
 * itself.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE_EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs', '.py']);

function walk(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...walk(path));
    else if (SOURCE_EXTENSIONS.has(extname(name))) files.push(path);
  }
  return files;
}

/** True when `quote` characters before `end` in `line` leave a string literal open. */
function insideString(line: string, end: number): boolean {
  let open: string | null = null;
  for (let i = 0; i < end; i++) {
    const char = line[i];
    if (open) {
      if (char === '\\') i++;
      else if (char === open) open = null;
    } else if (char === '"' || char === "'" || char === '`') open = char;
  }
  return open !== null;
}

/** The comment text of a source file, each piece with its line number (1-based). */
function comments(text: string, python: boolean): { line: number; text: string }[] {
  const found: { line: number; text: string }[] = [];
  let inBlock = false;
  text.split('\n').forEach((line, index) => {
    const number = index + 1;
    if (python) {
      // `#` comments and docstrings (the lines from an opening `"""` to the closing one).
      const quotes = line.split('"""').length - 1;
      if (inBlock || quotes > 0) found.push({ line: number, text: line });
      else {
        const hash = line.indexOf('#');
        if (hash >= 0 && !insideString(line, hash)) found.push({ line: number, text: line.slice(hash + 1) });
      }
      if (quotes % 2 === 1) inBlock = !inBlock;
      return;
    }
    if (inBlock) {
      const end = line.indexOf('*/');
      found.push({ line: number, text: end >= 0 ? line.slice(0, end) : line });
      if (end >= 0) inBlock = false;
      return;
    }
    const block = line.indexOf('/*');
    const slashes = line.indexOf('//');
    if (block >= 0 && (slashes < 0 || block < slashes) && !insideString(line, block)) {
      const end = line.indexOf('*/', block + 2);
      found.push({ line: number, text: end >= 0 ? line.slice(block + 2, end) : line.slice(block + 2) });
      if (end < 0) inBlock = true;
      return;
    }
    // A line comment: `//` outside any string literal, and not the `//` of a URL (`https://…`).
    let at = slashes;
    while (at >= 0) {
      if (line[at - 1] !== ':' && !insideString(line, at)) {
        found.push({ line: number, text: line.slice(at + 2) });
        break;
      }
      at = line.indexOf('//', at + 2);
    }
  });
  return found;
}

const PATH = /(?<![\w./@-])((?:src|test|docs|bench|scripts)\/[\w./-]*[\w])/g;
const TEST_FILE = /(?<![\w/.-])([\w.-]+\.test\.ts)\b/g;
const DOC_SECTION = /(docs\/[\w.-]+\.md) §(\d+(?:\.\d+)*)/g;

const files = [...walk(join(repoRoot, 'src')), ...walk(join(repoRoot, 'test'))];
const testFiles = new Set(walk(join(repoRoot, 'test')).map((path) => basename(path)));

function headings(doc: string): Set<string> {
  const numbers = new Set<string>();
  for (const match of readFileSync(join(repoRoot, doc), 'utf8').matchAll(/^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s/gm)) numbers.add(match[1]!);
  return numbers;
}

describe('paths quoted in comments', () => {
  it('the comment scanner finds what it should, and only that', () => {
    const sample = [
      '// see src/a.ts',
      "const url = 'https://example.com/src/not-a-comment.ts'; // and test/b.test.ts",
      '/** block',
      ' * docs/x.md §2 */',
      "const s = '// src/inside-a-string.ts';",
    ].join('\n');
    const text = comments(sample, false).map((c) => c.text).join('|');
    expect(text).toContain('src/a.ts');
    expect(text).toContain('test/b.test.ts');
    expect(text).toContain('docs/x.md §2');
    expect(text).not.toContain('not-a-comment');
    expect(text).not.toContain('inside-a-string');
  });

  it('every repository path in a comment exists', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const comment of commentsOf(file)) {
        for (const match of comment.text.matchAll(PATH)) {
          const path = match[1]!.replace(/\.$/, '');
          checked++;
          if (!existsSync(join(repoRoot, path))) missing.push(`${relative(repoRoot, file)}:${comment.line}: ${path}`);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(20); // the scan really reads the comments
  });

  it('every test file named in a comment is one of ours', () => {
    const missing: string[] = [];
    for (const file of files) {
      for (const comment of commentsOf(file)) {
        for (const match of comment.text.matchAll(TEST_FILE)) if (!testFiles.has(match[1]!)) missing.push(`${relative(repoRoot, file)}:${comment.line}: ${match[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every `docs/….md §N` citation names a section of that document', () => {
    const missing: string[] = [];
    const cache = new Map<string, Set<string>>();
    let checked = 0;
    for (const file of files) {
      for (const comment of commentsOf(file)) {
        for (const match of comment.text.matchAll(DOC_SECTION)) {
          const [, doc, section] = match;
          if (!existsSync(join(repoRoot, doc!))) continue; // reported by the path check
          if (!cache.has(doc!)) cache.set(doc!, headings(doc!));
          checked++;
          if (!cache.get(doc!)!.has(section!)) missing.push(`${relative(repoRoot, file)}:${comment.line}: ${doc} §${section}`);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(10);
  });

  it('no comment cites the research notes that are not part of the repository', () => {
    const offenders: string[] = [];
    for (const file of files) {
      for (const comment of commentsOf(file)) {
        if (/\breference §|shared\/reference|(?<!docs\/)aws-cli-parsing\.md/.test(comment.text)) offenders.push(`${relative(repoRoot, file)}:${comment.line}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

function commentsOf(file: string) {
  return comments(readFileSync(file, 'utf8'), file.endsWith('.py'));
}
