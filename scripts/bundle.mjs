#!/usr/bin/env node
// Bundles guard-aws's own code for the CLI (dependencies stay external, loaded from node_modules as usual).
// Why: a call that people and agents make thousands of times a day must start fast, and loading ~40 small ES
// modules costs more than the code in them. Lazy imports stay lazy: code splitting keeps each command's code in
// its own chunk. Output sits at dist/app/ — two levels below the package root, like tsc's dist/<dir>/ files,
// because modules locate policies/ and data/ relative to their own URL.
import { build } from 'esbuild';

await build({
  entryPoints: { main: 'src/cli/main.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  outdir: 'dist/app',
  chunkNames: '[name]-[hash]',
  logLevel: 'warning',
  legalComments: 'none',
});
