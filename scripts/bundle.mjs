#!/usr/bin/env node
// Bundles guard-aws's own code for the CLI (dependencies stay external, loaded from node_modules as usual).
// Why: a call that people and agents make thousands of times a day must start fast, and loading ~40 small ES
// modules costs more than the code in them. Lazy imports stay lazy: code splitting keeps each command's code in
// its own chunk. Output sits at dist/app/ — two levels below the package root, like tsc's dist/<dir>/ files,
// because modules locate policies/ and data/ relative to their own URL.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isBuiltin } from 'node:module';
import { build } from 'esbuild';

// commander is the exception: every command needs it, and loaded from node_modules it is seven CommonJS files
// (each resolved, realpath'd, read and compiled on its own) — 8–13% of `explain`'s start-up in a CPU profile
// (issue 14). Bundled, it is part of the chunk that imports it.
const BUNDLED = new Set(['commander']);
const dependenciesExternal = {
  name: 'dependencies-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      if (BUNDLED.has(name)) return undefined;
      // A bundled CommonJS module's require() of a Node built-in (commander's): served by process.getBuiltinModule
      // (Node ≥ 20.16), so no chunk needs a `require` of its own (a createRequire banner in each of them, and
      // node:module loaded for it). child_process is read on first use only: commander needs it for executable
      // sub-commands, which guard-aws has none of, and loading it pulls in net, dgram and streams (~3 ms).
      if (args.kind === 'require-call' && (args.path.startsWith('node:') || isBuiltin(args.path))) {
        return { path: args.path.replace(/^node:/, ''), namespace: 'node-builtin' };
      }
      return { path: args.path, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => ({
      loader: 'js',
      contents:
        args.path === 'child_process'
          ? `let m; module.exports = new Proxy({}, { get: (_, k) => (m ??= process.getBuiltinModule('node:child_process'))[k] });`
          : `module.exports = process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)});`,
    }));
  },
};

// Two chunks for the hot paths (src/cli/hot.ts says why): hot.ts's modules (explain) and hot-run.ts's (a guarded
// call). esbuild puts a module in the chunk of the set of entry points (main.ts and every import() target) that
// reach it, so every import() target is made to import hot.ts, and every one but explain's fast path (and the
// policy loader it may need) hot-run.ts too: each list's modules are then reached by one set of entry points and
// land in one chunk. main.ts itself imports neither, so `--version` and `--help` load neither.
const HOT = resolve('src/cli/hot.ts');
const HOT_RUN = resolve('src/cli/hot-run.ts');
// hot.ts's own modules (found by a bundling pass that writes nothing), and the policy loader explain may need: an
// import() target among them must not pull hot-run.ts into explain.
const hotGraph = await build({ entryPoints: [HOT], bundle: true, write: false, metafile: true, format: 'esm', platform: 'node', plugins: [dependenciesExternal], logLevel: 'warning' });
const EXPLAIN_ONLY = new Set([...Object.keys(hotGraph.metafile.inputs).map((p) => resolve(p)), resolve('src/policy/load.ts')]);
const dynamicTargets = new Set();
for (const file of readdirSync('src', { recursive: true })) {
  if (!file.endsWith('.ts')) continue;
  const path = resolve('src', file);
  for (const m of readFileSync(path, 'utf8').matchAll(/\bimport\(\s*'(\.[^']+)\.js'\s*\)/g)) dynamicTargets.add(resolve(dirname(path), `${m[1]}.ts`));
}
const hotChunks = {
  name: 'hot-chunks',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (!dynamicTargets.has(args.path)) return undefined;
      const hot = EXPLAIN_ONLY.has(args.path) ? [HOT] : [HOT, HOT_RUN];
      const prefix = hot.map((h) => `import ${JSON.stringify(h)};\n`).join('');
      return { contents: prefix + readFileSync(args.path, 'utf8'), loader: 'ts', resolveDir: dirname(args.path) };
    });
  },
};

// Chunk names carry a content hash: clear the output first so chunks of earlier builds do not pile up.
rmSync('dist/app', { recursive: true, force: true });

await build({
  entryPoints: { main: 'src/cli/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [dependenciesExternal, hotChunks],
  outdir: 'dist/app',
  chunkNames: '[name]-[hash]',
  logLevel: 'warning',
  legalComments: 'none',
});

// The web console's browser code (src/console/client/): one small script and one stylesheet, no framework, served
// by the broker itself from dist/ui/ (src/console/assets.ts). Nothing is loaded from anywhere else at run time.
await build({
  entryPoints: ['src/console/client/console.ts', 'src/console/client/console.css'],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  outdir: 'dist/ui',
  entryNames: '[name]',
  logLevel: 'warning',
  legalComments: 'none',
});
