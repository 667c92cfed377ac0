import { lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GuardError } from '../errors.js';
import { stampToken, tokenState } from '../io/liveness.js';
import { MASK, SECRET_FIELDS } from '../masking/rules.js';
import { ACTIVE_ENV, type AwsBinary } from './find-aws.js';
import { PLUGIN_MODULE, writePlugin, type PluginConfig } from './aws-plugin.js';

/**
 * The sealed execution environment of docs/aws-cli-parsing.md §6.2: a fresh private HOME and an environment built from
 * nothing, so none of the caller's AWS settings, files or variables can reach the CLI holding the scoped
 * credentials.
 */

export interface ScopedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

export interface Sandbox {
  home: string;
  env: Record<string, string>;
  /** Removes the private HOME (idempotent). */
  dispose(): void;
}

export interface SandboxOptions {
  aws: AwsBinary;
  credentials: ScopedCredentials;
  region: string;
  /** Extra secret field names from policy files (also masked by the in-CLI plugin). */
  extraFields: string[];
  dockerLoginToken: boolean;
  /** Secret paths per API operation of the command being run (data/sensitive-outputs.json). */
  sensitivePaths?: Record<string, string[]>;
  /** Enum values of secret field names, left unmasked (data/sensitive-outputs.json). */
  fieldEnums?: Record<string, string[]>;
  tty: { columns: number } | null;
  /** Parent directory of the private HOME; default userRunRoot(). */
  tmpRoot?: string | undefined;
  /** Copied through when set: only changes how the CLI renders local times. */
  tz?: string | undefined;
  /** The process aws must not outlive (default: this one); see PluginConfig.parentPid. */
  parentPid?: number;
}

/** Private HOMEs are `<tmp>/guard-aws-run-<owner stamp>-XXXXXX`: the name says whose it is (src/io/liveness.ts). */
export const SANDBOX_PREFIX = 'guard-aws-run-';

/**
 * Where a local run's private HOME goes: `<tmp>/guard-aws-<uid>`, this user's own directory, so the sweep of killed
 * runs lists a handful of names instead of a shared /tmp (10,000 entries took 8.5 ms to list, an eighth of what a
 * guarded call adds to plain aws). Used only when it is a real directory owned by this user and closed to everyone
 * else; anything else there (another user's directory, a symlink) is left alone and the HOME goes into tmp itself,
 * as before. In a sticky /tmp nobody else can rename or replace a directory of ours once checked.
 */
export function userRunRoot(tmp: string = tmpdir()): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === undefined) return tmp;
  const dir = join(tmp, `guard-aws-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return tmp;
  }
  try {
    const st = lstatSync(dir);
    if (st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return dir;
  } catch {
    /* removed meanwhile */
  }
  return tmp;
}

/**
 * Removes private HOMEs left by runs that were killed (kill -9 cannot run the cleanup). Only directories that are
 * provably abandoned: named with an owner stamp whose process is dead on this host (boot id and pid start time
 * guard against reuse), real directories (not symlinks) owned by this user. Anything else is left alone — another
 * user's, another host's (shared /tmp), or a run still going. Resolves to how many were removed; never rejects.
 */
export async function sweepStaleSandboxes(tmpRoot: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(tmpRoot);
  } catch {
    return 0;
  }
  let removed = 0;
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  for (const name of names) {
    if (!name.startsWith(SANDBOX_PREFIX)) continue;
    const rest = name.slice(SANDBOX_PREFIX.length);
    const cut = rest.lastIndexOf('-');
    if (cut <= 0) continue;
    if (tokenState(rest.slice(0, cut)) !== 'dead') continue;
    const dir = join(tmpRoot, name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed++;
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
  return removed;
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * The CLI's config for this one run. `cli_follow_urlparam = false` stops v1 fetching http(s):// parameter
 * values (vector 15); `cli_history = disabled` keeps requests and responses off disk (vector 18); the only
 * plugin is guard-aws's masking module (vector 10). v2 needs `cli_legacy_plugin_path` to import it; v1 would
 * try to import that value as a module, so it is written for v2 only.
 */
function configText(o: SandboxOptions, pluginDir: string): string {
  const lines = ['[default]', `region = ${o.region}`, 'output = json', 'cli_follow_urlparam = false', 'cli_history = disabled'];
  if (o.aws.major === 2) lines.push('cli_pager =', 'cli_auto_prompt = off');
  lines.push('', '[plugins]');
  if (o.aws.major === 2) lines.push(`cli_legacy_plugin_path = ${pluginDir}`);
  lines.push(`${PLUGIN_MODULE} = ${PLUGIN_MODULE}`, '');
  return lines.join('\n');
}

export function createSandbox(o: SandboxOptions): Sandbox {
  // The region ends up in an INI file: refuse anything but a region name so it cannot add lines.
  if (!REGION.test(o.region)) throw new GuardError('config_invalid', `the grant's region ${JSON.stringify(o.region)} is not a region name`);
  const root = o.tmpRoot ?? userRunRoot();
  const home = mkdtempSync(join(root, `${SANDBOX_PREFIX}${stampToken()}-`));
  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    rmSync(home, { recursive: true, force: true });
  };
  try {
    const pluginDir = join(home, 'plugin');
    mkdirSync(pluginDir, { mode: 0o700 });
    const plugin: PluginConfig = {
      mask: MASK,
      fields: [...SECRET_FIELDS, ...o.extraFields],
      fieldEnums: o.fieldEnums ?? {},
      paths: o.sensitivePaths ?? {},
      dockerLoginToken: o.dockerLoginToken,
      tty: o.tty,
      parentPid: o.parentPid ?? process.pid,
    };
    writePlugin(pluginDir, plugin);
    const configFile = join(home, 'config');
    writeFileSync(configFile, configText(o, pluginDir), { mode: 0o600 });
    const tmp = join(home, 'tmp');
    mkdirSync(tmp, { mode: 0o700 });

    const env: Record<string, string> = {
      // Only the system directories and the CLI's own (its interpreter lives there): no session-manager-plugin,
      // pager or credential helpers from the caller's PATH (vector 20).
      PATH: `${dirname(o.aws.path)}:/usr/bin:/bin`,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      // No ~/.aws/cli/alias, ~/.aws/models, ~/.aws/cli/cache, ~/.boto here (vectors 9, 11, 8).
      HOME: home,
      TMPDIR: tmp,
      AWS_CONFIG_FILE: configFile,
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_ACCESS_KEY_ID: o.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: o.credentials.secretAccessKey,
      AWS_SESSION_TOKEN: o.credentials.sessionToken,
      AWS_REGION: o.region,
      AWS_DEFAULT_REGION: o.region,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CSM_ENABLED: 'false',
      AWS_PAGER: '',
      AWS_CLI_AUTO_PROMPT: 'off',
      // Endpoints from env or config are ignored; an explicit --endpoint-url (test targets only, added by the
      // runner from the broker's grant) still applies (botocore configprovider: ignore_configured_endpoint_urls).
      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true',
      // The masking plugin is imported from this run's private directory and nowhere else.
      PYTHONPATH: pluginDir,
      PYTHONNOUSERSITE: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      // aws's stdout is always a pipe here (the masker reads it), where Python would buffer it in 8 KiB blocks: a
      // `logs tail --follow` would show nothing until a block filled. Unbuffered, it streams as at a terminal.
      PYTHONUNBUFFERED: '1',
      [ACTIVE_ENV]: '1',
    };
    if (o.tz && /^[A-Za-z0-9_+\-/:.]{1,64}$/.test(o.tz)) env.TZ = o.tz;
    return { home, env, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}
