#!/usr/bin/env node
// CI check (.ci/run, after `npm run test:all` installed and built everything): a second `npm run dev` must skip
// the install and the build and be serving within 30 s — the README promises "install once; start in seconds".
// It starts `npm run dev` on free ports with a throw-away data directory, waits for the banner, then stops it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LIMIT_MS = 30_000;
const data = mkdtempSync(join(tmpdir(), 'guard-aws-dev-start-'));
const started = Date.now();
const child = spawn('npm', ['run', 'dev', '--', '--port', '0', '--idp-port', '0', '--data-dir', data], {
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true, // its own process group, so npm, node and moto_server all stop together
});
let text = '';
const fail = (why) => {
  process.stderr.write(`check-dev-start: ${why}\n${text}\n`);
  finish(1);
};
function finish(code) {
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {}
  rmSync(data, { recursive: true, force: true });
  process.exit(code);
}
const timer = setTimeout(() => fail(`npm run dev was not serving after ${LIMIT_MS / 1000} s`), LIMIT_MS);
const onData = (b) => {
  text += b.toString();
  if (!text.includes('guard-aws dev is running')) return;
  clearTimeout(timer);
  if (!text.includes('npm packages up to date') || !text.includes('build up to date')) return fail('npm run dev installed or built again on a second start');
  process.stderr.write(`check-dev-start: npm run dev serving after ${((Date.now() - started) / 1000).toFixed(1)} s (limit ${LIMIT_MS / 1000} s)\n`);
  finish(0);
};
child.stdout.on('data', onData);
child.stderr.on('data', onData);
child.on('close', (code) => fail(`npm run dev exited ${code} before it was serving`));
