#!/usr/bin/env node
// Generates data/sensitive-outputs.json: for every CLI operation whose response can hold a secret, the paths of
// those secrets in the parsed response. Read by the masking plugin (src/runner/aws-plugin.ts, masks by path
// before the CLI formats the response) and by the risk signals (src/invocation/risks.ts, `secret_read`).
// Kept apart from gen-aws-model.mjs (run it after that one: it reads data/aws-model/).
//
// Source: the shapes botocore marks `"sensitive": true` (scripts/dump-sensitive-outputs.py). botocore uses that
// trait for anything not to be logged — secrets, but also personal data (names, e-mail addresses, phone
// numbers), prompts, map coordinates and QuickSight display strings. Only the secrets are kept: a sensitive
// shape whose shape name or member name says it is a credential, key, password, token or environment (SECRET
// below), except identifiers and descriptions of such things (NOT_SECRET_MEMBER). Plus CURATED: secrets the
// models do not mark. Output is deterministic (sorted keys).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = process.env.AWS_PYTHON ?? '/root/.pyenv/versions/3.11.7/bin/python';

// Field names masked wherever they appear (src/masking/rules.ts SECRET_FIELDS): their enum values are dumped
// so name-based masking can tell Cognito's `TokenValidityUnits.AccessToken: "hours"` from a token.
const rulesSrc = readFileSync(join(root, 'src/masking/rules.ts'), 'utf8');
const fieldBlock = /export const SECRET_FIELDS[^=]*= \[([^\]]*)\]/.exec(rulesSrc);
if (!fieldBlock) throw new Error('SECRET_FIELDS not found in src/masking/rules.ts');
const secretFields = [...fieldBlock[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);

const dump = JSON.parse(
  execFileSync(python, [join(root, 'scripts/dump-sensitive-outputs.py'), ...secretFields], { maxBuffer: 1 << 28, encoding: 'utf8' }),
);

/** Shape or member names that say the value is secret material. */
const SECRET =
  /passw|passphrase|secret|token|credential|privatekey|keymaterial|plaintext|environment|userdata|presharedkey|connectionstring|apikey|signature|streamkey|pinblock|pinoffset|authcode|authenticationmaterial|activationcode|activationkey|devicespecifickey|customergatewayconfiguration|devicesampleconfiguration/i;
/** Shapes whose name matches SECRET but hold no secret (pagination tokens, key ids, token types). */
const NOT_SECRET_SHAPE = /^(nexttoken|\w*paginationtoken|\w*keyid(type)?|maxtokenstosample)$/i;
/**
 * Members that only name or point to a secret (its id, ARN, name, URL), describe it, or configure something
 * (`EnvironmentName`, `SecretId`, `MediaUriSecretArn`, `environmentConfigurationId`, kms `PublicKey`).
 * Checked before SECRET, except for the explicit names in SECRET's tail (VPN configurations hold the tunnels'
 * pre-shared keys).
 */
const NOT_SECRET_MEMBER = /(Name|Id|Arn|Template|Url|PublicKey|ToSample|Rules|Description)$|Configuration$/i;
const EXPLICIT = /^(customergatewayconfiguration|vpnconnectiondevicesampleconfiguration)$/i;

function isSecret(shape, member) {
  if (EXPLICIT.test(shape) || EXPLICIT.test(member)) return true;
  if (member && NOT_SECRET_MEMBER.test(member)) return false;
  if (NOT_SECRET_SHAPE.test(shape) || NOT_SECRET_SHAPE.test(member)) return false;
  return SECRET.test(shape) || SECRET.test(member);
}

/**
 * Secrets the models do not mark sensitive. `when` names the request parameter that makes the response carry
 * the secret (the risk is raised only then; masking by path applies always, the path is absent otherwise).
 */
const CURATED = {
  // The instance's user data (scripts, often with credentials), base64, only with --attribute userData.
  ec2: { 'describe-instance-attribute': { paths: ['UserData.Value'], when: { param: 'Attribute', equals: 'userData' } } },
  // API keys are bearer secrets for API Gateway; the value is returned with --include-values / --include-value.
  apigateway: {
    'get-api-keys': { paths: ['items[].value'], when: { param: 'includeValues', equals: true } },
    'get-api-key': { paths: ['value'], when: { param: 'includeValue', equals: true } },
    'create-api-key': { paths: ['value'] },
    'update-api-key': { paths: ['value'] },
  },
  // Container environments, like Lambda's (which the models mark): where deployments put their secrets.
  batch: { 'describe-job-definitions': { paths: ['jobDefinitions[].containerProperties.environment[].value'] } },
};

/**
 * Secrets a caller sets but AWS never sends back in clear: RDS and Redshift report a pending master password
 * change as `****` (RDS API reference, PendingModifiedValues), FSx never returns `FsxAdminPassword` (FSx API
 * reference, OntapFileSystemConfiguration). Still masked by path, but they give no `secret_read` — otherwise
 * `rds describe-db-instances` would need an approval like `secretsmanager get-secret-value`.
 */
const PLACEHOLDER_ONLY = /(^|\.)PendingModifiedValues\.MasterUserPassword$|OntapConfiguration\.FsxAdminPassword$/;

const commands = {};
let sensitiveFields = 0;
let keptFields = 0;
const modelFile = (cmd) => JSON.parse(readFileSync(join(root, 'data/aws-model', `${cmd}.json`), 'utf8'));
for (const [cmd, ops] of Object.entries(dump.commands)) {
  for (const [cli, op] of Object.entries(ops)) {
    sensitiveFields += op.sensitive.length;
    const paths = op.sensitive.filter(([, shape, member]) => isSecret(shape, member)).map(([path]) => path);
    if (!paths.length) continue;
    keptFields += paths.length;
    const entry = { o: op.o, paths: [...new Set(paths)].sort() };
    if (paths.every((p) => PLACEHOLDER_ONLY.test(p))) entry.risk = false;
    (commands[cmd] ??= {})[cli] = entry;
  }
}
for (const [cmd, ops] of Object.entries(CURATED)) {
  const model = modelFile(cmd);
  for (const [cli, entry] of Object.entries(ops)) {
    const op = model.ops[cli];
    if (!op) throw new Error(`curated ${cmd} ${cli} is not in data/aws-model`);
    // Arguments are encoded "cli-name|Member|type…"; an empty Member means PascalCase(cli-name).
    const members = op.a.map((a) => a.split('|')).map(([name, member]) => member || name.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join(''));
    if (entry.when && !members.includes(entry.when.param)) throw new Error(`curated ${cmd} ${cli}: no parameter ${entry.when.param}`);
    const prev = commands[cmd]?.[cli];
    (commands[cmd] ??= {})[cli] = {
      o: op.o,
      paths: [...new Set([...(prev?.paths ?? []), ...entry.paths])].sort(),
      ...(entry.when ? { when: entry.when } : {}),
    };
  }
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}
const out = { botocoreVersion: dump.botocoreVersion, commands, fieldEnums: dump.enums };
writeFileSync(join(root, 'data/sensitive-outputs.json'), JSON.stringify(sortKeys(out)) + '\n');
const nOps = Object.values(commands).reduce((n, ops) => n + Object.keys(ops).length, 0);
const nRisk = Object.values(commands).reduce((n, ops) => n + Object.values(ops).filter((e) => e.risk !== false).length, 0);
process.stdout.write(
  `botocore ${dump.botocoreVersion}: ${sensitiveFields} sensitive output fields, ${keptFields} of them secrets; ` +
    `${nOps} operations in ${Object.keys(commands).length} commands return a secret (${nRisk} of them in clear)\n`,
);
