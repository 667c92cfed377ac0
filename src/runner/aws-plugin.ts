import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The first masking layer, inside the real CLI: a plugin loaded through the CLI's official `[plugins]` config
 * section (v1 `awscli/plugin.py` imports the module from `sys.path`; v2 also needs `cli_legacy_plugin_path`).
 * It registers a botocore `after-call` handler (emitted by `BaseClient._make_api_call` with the parsed
 * response, before the CLI formats it) that replaces secret fields in place. Because the CLI formats the
 * already-masked response, json, text, table and yaml output are masked identically, `--query` sees masked
 * values, and output without secrets is exactly what plain `aws` prints. The streaming masker in the runner
 * remains the second layer for everything the plugin cannot see (stderr, customizations that print directly,
 * patterns, known values).
 *
 * The module is written into each run's private temporary HOME, so nothing on disk outside guard-aws's own
 * sandbox is imported into the process holding the credentials. If it cannot be imported, the CLI fails to
 * start and nothing runs (fail closed).
 */
export const PLUGIN_MODULE = 'guard_aws_mask';

export interface PluginConfig {
  mask: string;
  /** Field names masked wherever they appear in a response (compared case-insensitively). */
  fields: string[];
  /**
   * Lower-cased field name → enum values a member of that name takes in the models (Cognito's
   * `TokenValidityUnits.AccessToken: "hours"`): such a value is a constant from the public model, not a secret,
   * and is left alone.
   */
  fieldEnums: Record<string, string[]>;
  /**
   * API operation name → paths of secrets in its parsed response (data/sensitive-outputs.json, for the command
   * being run): generic names such as `Value` or `value` are masked only where the model puts a secret.
   */
  paths: Record<string, string[]>;
  /**
   * `ecr get-login-password` / `get-login` decode `authorizationToken` as base64 "user:password" and print
   * the password: the token is then replaced by base64("AWS:" + mask) so they print the mask instead of failing.
   */
  dockerLoginToken: boolean;
  /** The caller's stdout is a terminal of this width: tables get the same width and colour as plain aws. */
  tty: { columns: number } | null;
  /**
   * guard-aws's pid: aws must not outlive it (it holds the scoped credentials, and nobody would record or mask
   * its output). The plugin asks the kernel for SIGKILL when its parent dies (Linux prctl PR_SET_PDEATHSIG, see
   * prctl(2)) and, everywhere, watches its parent pid once a second. Absent = not tied (tests of the plugin alone).
   */
  parentPid?: number;
}

const PLUGIN_SOURCE = `# Written by guard-aws for one run of the AWS CLI; see src/runner/aws-plugin.ts.
import base64
import json
import os
import re

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '${PLUGIN_MODULE}.json'), encoding='utf-8') as _f:
    _CFG = json.load(_f)

def _tie_to_parent(parent):
    # Node cannot set PR_SET_PDEATHSIG for its child, so the child sets it on itself, first thing. The death
    # signal fires when the parent exits for any reason, including kill -9. If the parent died before this line
    # ran, getppid() already names another process: exit at once.
    import signal
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass
    if os.getppid() != parent:
        os._exit(137)
    # Where prctl does not exist (macOS), a daemon thread notices the re-parenting within a second.
    import threading
    import time

    def _watch():
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=_watch, name='guard-aws-parent-watch', daemon=True).start()


if _CFG.get('parentPid'):
    _tie_to_parent(int(_CFG['parentPid']))

_MASK = _CFG['mask']
_FIELDS = frozenset(f.lower() for f in _CFG['fields'])
_ENUMS = {k: frozenset(v) for k, v in _CFG.get('fieldEnums', {}).items()}
_SEGMENT = re.compile(r'\\[\\]|\\{\\}|[^.\\[\\]{}]+')
_PATHS = {op: [_SEGMENT.findall(p) for p in paths] for op, paths in _CFG.get('paths', {}).items()}
_DOCKER = bool(_CFG.get('dockerLoginToken'))
_DOCKER_TOKEN = base64.b64encode(('AWS:' + _MASK).encode('utf-8')).decode('ascii')


def awscli_initialize(cli):
    cli.register('after-call', _after_call)
    tty = _CFG.get('tty')
    if tty:
        _as_terminal(int(tty['columns']))


def _as_terminal(columns):
    # guard-aws reads aws's stdout through a pipe to mask it; tables are laid out (and coloured) as they
    # would be on the caller's terminal.
    import awscli.table as table
    table.is_a_tty = lambda: True
    table.determine_terminal_width = lambda default_width=80: columns


def _masked(value):
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, (str, bytes, bytearray)):
        return _MASK
    return value


def _is_enum_constant(key, value):
    return isinstance(value, str) and value in _ENUMS.get(key.lower(), ())


def _mask_path(node, segments):
    """Masks what \`segments\` (member names, [] list elements, {} map values) reach in the parsed response."""
    if not segments:
        # The whole output shape is sensitive (codeartifact get-authorization-token): every member of the
        # response, but not botocore's own metadata or an error (its code decides retries and the exit code).
        if isinstance(node, dict):
            for k in list(node.keys()):
                if k not in ('ResponseMetadata', 'Error'):
                    node[k] = _masked(node[k])
        return
    head, rest = segments[0], segments[1:]
    if head == '[]':
        children = node if isinstance(node, list) else []
        for i, child in enumerate(children):
            if rest:
                _mask_path(child, rest)
            else:
                children[i] = _masked(child)
    elif head == '{}':
        if isinstance(node, dict):
            for k in list(node.keys()):
                if rest:
                    _mask_path(node[k], rest)
                else:
                    node[k] = _masked(node[k])
    elif isinstance(node, dict) and head in node:
        if rest:
            _mask_path(node[head], rest)
        else:
            node[head] = _masked(node[head])


def _walk(node):
    if isinstance(node, dict):
        # SSM: a SecureString parameter's Value is the (decrypted) secret.
        if node.get('Type') == 'SecureString' and 'Value' in node:
            node['Value'] = _MASK
        for key in list(node.keys()):
            if isinstance(key, str) and key.lower() in _FIELDS and not _is_enum_constant(key, node[key]):
                if _DOCKER and key == 'authorizationToken' and isinstance(node[key], str):
                    node[key] = _DOCKER_TOKEN
                else:
                    node[key] = _masked(node[key])
            else:
                _walk(node[key])
    elif isinstance(node, list):
        for item in node:
            _walk(item)


def _after_call(parsed=None, model=None, **kwargs):
    if isinstance(parsed, (dict, list)):
        # By path first (the operation's own secrets, generic names included), then by name everywhere.
        for segments in _PATHS.get(getattr(model, 'name', None), ()):
            _mask_path(parsed, segments)
        _walk(parsed)
`;

/** Writes the plugin module and its config into `dir` (a directory private to this run). */
export function writePlugin(dir: string, config: PluginConfig): void {
  writeFileSync(join(dir, `${PLUGIN_MODULE}.json`), JSON.stringify(config), { mode: 0o600 });
  writeFileSync(join(dir, `${PLUGIN_MODULE}.py`), PLUGIN_SOURCE, { mode: 0o600 });
}
