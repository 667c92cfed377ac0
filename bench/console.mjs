#!/usr/bin/env node
// The web console's first page load against the broker on loopback: a signed-in approver's home page (HTML) and
// the two assets it loads (script, stylesheet), uncached, fetched as a browser does (HTML, then both assets at
// once). Figures: bytes on the wire (and gzip size, for a compressing proxy in front) and the median time of the
// whole load, against the median round trip of the broker's cheapest answer (`GET /healthz`) in the same run.
// Target (issue 10, "a small bundle"): everything the first page needs ≤ 50 KB. Needs `npm run build`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { dist, root } from './lib/core.mjs';
import { report } from './lib/report.mjs';

const { startIdp } = await dist('idp/index.js');
const { startBroker } = await dist('broker/server.js');
const { brokerConfigFrom } = await dist('broker/config.js');
const { assembleBroker } = await dist('broker/assemble.js');
const { silentLog } = await dist('broker/log.js');
const { createServer } = await import('node:net');

const ROUNDS = Number(process.env.CONSOLE_BENCH_N ?? 50);
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const publicUrl = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'guard-console-bench-'));
const idp = await startIdp({ consoleRedirectUris: [`${publicUrl}/ui/callback`] });
const config = brokerConfigFrom(
  {
    listen: { host: '127.0.0.1', port },
    issuer: idp.issuer,
    audience: idp.audience,
    clientId: idp.clientId,
    jwksUri: idp.jwksUri,
    policies: [join(root, 'policies/default.yaml')],
    storage: { sqlite: join(dir, 'broker.db') },
    targets: [{ name: 'bench', roleArn: 'arn:aws:iam::123456789012:role/bench', region: 'us-east-1', default: true }],
    console: { publicUrl },
  },
  dir,
);
const broker = await startBroker(config, await assembleBroker(config, { overrides: { log: silentLog } }));

// Sign in as bob through the IdP's own form (authorization code + PKCE), keeping cookies per origin.
const jars = new Map();
const cookieFor = (url) => [...(jars.get(new URL(url).origin) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
async function go(url, init = {}) {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, Cookie: cookieFor(url) } });
  const jar = jars.get(new URL(url).origin) ?? new Map();
  for (const c of res.headers.getSetCookie()) {
    const pair = c.split(';')[0];
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  jars.set(new URL(url).origin, jar);
  return res;
}
let url = `${publicUrl}/ui/login`;
for (let i = 0; i < 20 && !url.startsWith(`${publicUrl}/ui/callback`); i++) {
  const res = await go(url);
  if (res.status >= 300 && res.status < 400) {
    url = new URL(res.headers.get('location'), url).href;
    continue;
  }
  const action = /<form id="login" method="post" action="([^"]+)"/.exec(await res.text())?.[1];
  if (!action) throw new Error(`bench: unexpected sign-in page at ${url}`);
  const posted = await go(new URL(action, url).href, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'username=bob&password=bob-password',
  });
  url = new URL(posted.headers.get('location'), url).href;
}
if ((await go(url)).status !== 200) throw new Error('bench: sign-in failed');
const cookie = cookieFor(publicUrl);

async function firstLoad() {
  const t0 = performance.now();
  const page = await fetch(`${publicUrl}/ui/`, { headers: { Cookie: cookie } });
  const html = Buffer.from(await page.arrayBuffer());
  const text = html.toString('utf8');
  const assets = [/<script src="([^"]+)"/.exec(text)[1], /<link rel="stylesheet" href="([^"]+)"/.exec(text)[1]];
  const bodies = await Promise.all(assets.map(async (a) => Buffer.from(await (await fetch(new URL(a, publicUrl))).arrayBuffer())));
  return { ms: performance.now() - t0, parts: [html, ...bodies] };
}
async function healthz() {
  const t0 = performance.now();
  await (await fetch(`${publicUrl}/healthz`)).arrayBuffer();
  return performance.now() - t0;
}

for (let i = 0; i < 5; i++) await firstLoad(), await healthz(); // warm-up (JIT, SQLite pages, sockets)
const loads = [];
const trips = [];
let parts = [];
for (let i = 0; i < ROUNDS; i++) {
  const l = await firstLoad();
  loads.push(l.ms);
  parts = l.parts;
  trips.push(await healthz());
}
await broker.close();
await idp.close();
rmSync(dir, { recursive: true, force: true });

const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const bytes = parts.reduce((n, b) => n + b.length, 0);
const gz = parts.reduce((n, b) => n + gzipSync(b).length, 0);
const [h, js, css] = parts.map((b) => b.length);
const load = med(loads);
const trip = med(trips);
console.log(`first page load: HTML ${h} B + script ${js} B + stylesheet ${css} B = ${bytes} B (${gz} B gzipped), median ${load.toFixed(1)} ms over ${ROUNDS}`);
console.log(`GET /healthz round trip: median ${trip.toFixed(2)} ms; the load is ${(load / trip).toFixed(1)}× that`);
const KB = (n) => `${(n / 1024).toFixed(1)} KB`;
report({
  name: 'console',
  measures: 'web console first page load (approver home: HTML + script + stylesheet, uncached) on loopback',
  figure: `${KB(bytes)} (${KB(gz)} gzipped) in ${load.toFixed(1)} ms (${(load / trip).toFixed(1)}× the round trip)`,
  baseline: `GET /healthz: ${trip.toFixed(2)} ms`,
  target: '≤ 50 KB',
  met: bytes <= 50 * 1024,
});
