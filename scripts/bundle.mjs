#!/usr/bin/env node
// Bundles guard-aws's own code for the CLI (dependencies stay external, loaded from node_modules as usual).
// Why: a call that people and agents make thousands of times a day must start fast, and loading ~40 small ES
// modules costs more than the code in them. Lazy imports stay lazy: code splitting keeps each command's code in
// its own chunk. Output sits at dist/app/ — two levels below the package root, like tsc's dist/<dir>/ files,
// because modules locate policies/ and data/ relative to their own URL.
import { build } from 'esbuild';

// commander is the exception: every command needs it, and loaded from node_modules it is seven CommonJS files
// (each resolved, realpath'd, read and compiled on its own) — 8–13% of `explain`'s start-up in a CPU profile
// (issue 14). Bundled, it is part of the chunk that imports it. Its require() of Node built-ins needs a real
// `require` in the ES module output: the banner provides one.
const BUNDLED = new Set(['commander']);
const dependenciesExternal = {
  name: 'dependencies-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
      if (BUNDLED.has(name)) return undefined;
      return { path: args.path, external: true };
    });
  },
};

await build({
  entryPoints: { main: 'src/cli/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  plugins: [dependenciesExternal],
  banner: { js: "import { createRequire as __guardCreateRequire } from 'node:module'; const require = __guardCreateRequire(import.meta.url);" },
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
