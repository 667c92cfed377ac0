/**
 * The modules `guard-aws explain` loads, listed so the bundle (scripts/bundle.mjs) puts them in one chunk; the run
 * path's own modules are in hot-run.ts. With code splitting, each group of modules shared by a different set of
 * commands became a chunk of its own: `explain -- s3 ls` loaded 21 files and the run path 35, and Node's ES module
 * loader spends more per file (resolve, realpath, read, link) than compiling the code in it: about 13 of the 18
 * CPU-ms explain spent loading its modules (issue 14, `npm run bench -- startup`). Nothing imports this file at run
 * time except through the bundle.
 *
 * Only modules without heavy dependencies belong here: every command but `--version`/`--help` loads all of it.
 * Their own lazy imports (the policy loader with YAML and zod) stay lazy.
 */
import './commands/explain-run.js';
