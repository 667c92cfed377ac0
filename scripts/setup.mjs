#!/usr/bin/env node
// `npm run setup` (and the first half of `npm run dev` and `npm run test:all`): install the npm packages and build,
// each only when needed, so a second `npm run dev` starts in seconds instead of reinstalling everything.
//
//  - Packages: installed when node_modules has no stamp, or the stamp does not match the hash of package.json,
//    package-lock.json and this Node's ABI (native modules such as better-sqlite3 are built per ABI). A fresh clone gets `npm ci`; an
//    existing node_modules is updated in place with `npm install` — never deleted, because a guard-aws (a dev
//    server, an agent's shim) may be running from this tree and would lose its modules mid-run.
//  - Build: run when dist/ is missing or was built from other contents of the sources (src/, the bundler script,
//    tsconfig.json, package-lock.json).
//
// `--force` does both regardless. Plain Node, no dependencies: it runs before anything is installed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.cwd();
const force = process.argv.includes('--force');
const npm = process.env.npm_execpath && process.env.npm_execpath.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];
const say = (line) => process.stderr.write(`setup: ${line}\n`);

function run(args) {
  say(`running npm ${args.join(' ')}`);
  const r = spawnSync(npm[0], [...npm.slice(1), ...args], { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) {
    say(`cannot run npm: ${r.error.code ?? r.error.message}`);
    process.exit(69);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// 1. Packages.
const lock = join(root, 'package-lock.json');
const stampFile = join(root, 'node_modules', '.guard-aws-setup');
// A dependency added to package.json alone must install too; the hash is taken again after installing, because
// `npm install` may rewrite package-lock.json (which would otherwise force a reinstall on the next start).
const packagesHash = () =>
  createHash('sha256')
    .update(readFileSync(join(root, 'package.json')))
    .update('\0')
    .update(existsSync(lock) ? readFileSync(lock) : Buffer.alloc(0))
    .update(`\0${process.versions.modules}\0${process.platform}-${process.arch}`)
    .digest('hex');
const have = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
if (force || have !== packagesHash()) {
  run(existsSync(join(root, 'node_modules')) ? ['install', '--no-audit', '--no-fund'] : ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stampFile, `${packagesHash()}\n`);
} else {
  say('npm packages up to date (package.json and package-lock.json unchanged)');
}

// 2. Build: a hash of the sources' contents (not their times: a checkout or a clock step must not fool it).
function hashTree(h, path) {
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) {
    for (const e of readdirSync(path).sort()) hashTree(h, join(path, e));
    return;
  }
  h.update(`${path.slice(root.length)}\0`).update(readFileSync(path)).update('\0');
}
const sourceHash = createHash('sha256');
for (const p of ['src', 'scripts/bundle.mjs', 'tsconfig.json', 'package-lock.json']) hashTree(sourceHash, join(root, p));
const sources = sourceHash.digest('hex');
const buildStamp = join(root, 'dist', '.guard-aws-build');
const builtFrom = existsSync(buildStamp) && existsSync(join(root, 'dist', 'app', 'main.js')) ? readFileSync(buildStamp, 'utf8').trim() : '';
if (force || builtFrom !== sources) {
  run(['run', 'build']);
  writeFileSync(buildStamp, `${sources}\n`);
} else {
  say('build up to date (sources unchanged since the last build)');
}
