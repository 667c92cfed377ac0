"""Dump the installed AWS CLI's own command and argument tables as JSON (stdout).

Run by scripts/gen-aws-model.mjs at build time only; guard-aws never needs Python at run time.
Driving the CLI's own driver (awscli.clidriver) gets CLI renames (argrename.py), boolean pairs
(--x/--no-x), CLI-only arguments (--cli-input-json, pagination, positional outfile) and customization
commands (s3 cp, wait, ...) exactly as the real argparse parser sees them (docs/aws-cli-parsing.md §3.1).
"""
import argparse
import json
import sys

import awscli

try:  # AWS CLI v2 vendors its botocore (awscli/botocore); v1 uses the separate package
    from awscli import botocore
except ImportError:  # pragma: no cover - v1
    import botocore
from awscli.argparser import ArgTableArgParser
from awscli.clidriver import ServiceCommand, ServiceOperation, create_clidriver
from awscli.customizations.paginate import PageArgument

try:
    from awscli.paramfile import PARAMFILE_DISABLED
except ImportError:  # v2: it loads file:// for every argument and never fetches URLs
    PARAMFILE_DISABLED = set()


def type_code(arg):
    """One letter per value kind, enough for the guard to decode values (docs/aws-cli-parsing.md §2.4)."""
    model = getattr(arg, 'argument_model', None)
    t = getattr(model, 'type_name', None) if model is not None else None
    if t is None:
        t = getattr(arg, 'cli_type_name', 'string')
    if t in ('integer', 'long'):
        return 'i'
    if t in ('float', 'double'):
        return 'f'
    if t == 'boolean':
        return 'b'
    if t == 'blob':
        if model is not None and model.serialization.get('streaming'):
            return 'P'  # streaming blob: the value is a file path the CLI opens
        return 'B'
    if t in ('structure', 'map'):
        if model is not None and getattr(model, 'is_document_type', False):
            return 'd'
        return 'S'
    if t == 'list':
        member = getattr(model, 'member', None)
        if member is not None and member.type_name in ('structure', 'map', 'list'):
            return 'L'
        return 'l'
    return 's'


def nargs_code(action):
    if action.nargs == 0 or (action.nargs is None and isinstance(
            action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
                     argparse._CountAction))):
        return 0
    if action.nargs is None:
        return 1
    return action.nargs


def paramfile_qualifier(emitter, service, operation):
    """The `service.operation` prefix PARAMFILE_DISABLED is matched against.

    v1's URIArgumentHandler compares the name of the event it receives, and the session's EventAliaser renames that
    event's service part first (botocore.utils.EVENT_ALIASES): `email` arrives as `ses`, `apigateway` as
    `api-gateway`, `api.sagemaker` as `sagemaker`. Using the endpoint prefix unaliased would miss those entries and
    mark literal arguments as fetched."""
    event = f'load-cli-arg.{service}.{operation}'
    alias = getattr(emitter, '_alias_event_name', None)
    if alias is not None:
        event = alias(event)
    return '.'.join(event.split('.')[1:])


def dump_args(arg_table, command_table=None, qualifier=None):
    parser = ArgTableArgParser(arg_table, command_table)
    by_dest = {}
    for name, arg in arg_table.items():
        by_dest[getattr(arg, 'py_name', name.replace('-', '_'))] = arg
    opts = []
    pos = []
    for action in parser._actions:
        if action.dest == 'subcommand':
            continue
        arg = by_dest.get(action.dest)
        member = getattr(arg, '_serialized_name', None) if arg is not None else None
        if isinstance(arg, PageArgument):
            member = None  # --starting-token, --max-items, --page-size feed the paginator, not the request
        tc = type_code(arg) if arg is not None else 's'
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction)):
            tc = 'b'
        # '!' marks arguments whose file:// / http(s):// values are NOT loaded (paramfile.py PARAMFILE_DISABLED
        # and no_paramfile): the URL is the literal value there.
        arg_name = action.dest.replace('_', '-') if arg is None else getattr(arg, 'name', action.dest)
        if getattr(arg, 'no_paramfile', False) or (qualifier and f'{qualifier}.{arg_name}' in PARAMFILE_DISABLED):
            tc += '!'
        if action.option_strings:
            for o in action.option_strings:
                opts.append([o[2:], nargs_code(action), member, tc])
        else:
            pos.append([action.dest, nargs_code(action), member, tc])
    out = {'a': opts}
    if pos:
        out['pos'] = pos
    return out


def dump_custom(cmd):
    out = {}
    qualifier = f'custom.{cmd.name}'
    try:
        sub = cmd.subcommand_table
    except Exception:
        sub = {}
    try:
        out.update(dump_args(cmd.arg_table, sub or None, qualifier))
    except Exception as e:  # pragma: no cover - reported so the generator can fail loudly
        out['error'] = repr(e)
    if sub:
        out['sub'] = {n: dump_custom(c) for n, c in sub.items()}
    return out


def main():
    driver = create_clidriver()
    emitter = driver.session.get_component('event_emitter')
    table = driver._get_command_table()
    make_parser = getattr(driver, "_create_parser", None) or driver.create_parser  # v1 private, v2 public
    main_parser = make_parser(table)
    globals_ = []
    for action in main_parser._actions:
        for o in action.option_strings:
            if o.startswith('--'):
                globals_.append([o[2:], nargs_code(action)])
    commands = {}
    for name, cmd in table.items():
        if isinstance(cmd, ServiceCommand):
            model = cmd.service_model
            meta = model.metadata
            entry = {
                'service': cmd._service_name,
                'signingName': meta.get('signingName') or meta.get('endpointPrefix'),
                'endpointPrefix': meta.get('endpointPrefix'),
                'ops': {},
                'custom': {},
            }
            for op_name, op in cmd._get_command_table().items():
                if isinstance(op, ServiceOperation):
                    om = op._operation_model
                    d = {'o': om.name}
                    d.update(dump_args(op.arg_table, None, paramfile_qualifier(emitter, model.endpoint_prefix, op_name)))
                    http = om.http or {}
                    if http.get('method'):
                        d['h'] = [http.get('method'), http.get('requestUri', '')]
                    entry['ops'][op_name] = d
                else:
                    entry['custom'][op_name] = dump_custom(op)
            # waiter name (CLI form) -> operation, from waiters-2.json via botocore
            try:
                wm = driver.session.get_waiter_model(cmd._service_name)
                entry['waiters'] = {
                    botocore.xform_name(w, '-'): wm.get_waiter(w).operation for w in wm.waiter_names
                }
            except Exception:
                pass
            commands[name] = entry
        else:
            commands[name] = {'service': None, 'custom': {'': dump_custom(cmd)}}
    json.dump({'cliVersion': awscli.__version__, 'botocoreVersion': botocore.__version__,
               'globals': globals_, 'commands': commands}, sys.stdout, sort_keys=True, separators=(',', ':'))


if __name__ == '__main__':
    main()
