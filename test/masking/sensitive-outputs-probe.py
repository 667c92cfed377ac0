"""Test driver for test/masking/sensitive-outputs.test.ts, run with the real AWS CLI v1's Python.

  argv  DATA            → for every operation in DATA (data/sensitive-outputs.json): its required input members
                          with placeholder values (for `--cli-input-json`), plus the `when` parameter.
  mask  DATA PLUGINDIR  → for every secret path of every operation: a parsed response (built from botocore's
                          output shape) with a unique sentinel string in every string under the path, run through
                          guard-aws's masking plugin (written to PLUGINDIR by the test, config rewritten per
                          command), then formatted as json, text and table by the CLI's own formatters and as yaml
                          (PyYAML; v2's yaml formatter dumps the same parsed object). Prints what leaked.
"""
import argparse
import datetime
import importlib
import io
import json
import os
import sys

import botocore.session
import yaml
from awscli.formatter import get_formatter

session = botocore.session.get_session()
_models = {}


def model(service):
    if service not in _models:
        _models[service] = session.get_service_model(service)
    return _models[service]


def index():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../..')
    with open(os.path.join(root, 'data/aws-model/index.json'), encoding='utf-8') as f:
        return json.load(f)['commands']


def placeholder(shape, depth=0):
    t = shape.type_name
    if t == 'structure':
        return {m: placeholder(shape.members[m], depth + 1) for m in shape.required_members} if depth < 6 else {}
    if t == 'list':
        return [placeholder(shape.member, depth + 1)]
    if t == 'map':
        return {}
    if t in ('integer', 'long'):
        return max(1, shape.metadata.get('min', 1))
    if t in ('float', 'double'):
        return 1.0
    if t == 'boolean':
        return True
    if t == 'blob':
        return 'eA=='
    if t == 'timestamp':
        return '2024-01-01T00:00:00Z'
    enum = shape.metadata.get('enum')
    if enum:
        return enum[0]
    return 'x' * max(1, min(shape.metadata.get('min', 1), 8)) if shape.metadata.get('min', 1) > 1 else 'x1'


def argv_mode(data):
    cmds = index()
    out = []
    for cmd, ops in sorted(data['commands'].items()):
        sm = model(cmds[cmd]['service'])
        for cli, entry in sorted(ops.items()):
            om = sm.operation_model(entry['o'])
            params = placeholder(om.input_shape) if om.input_shape is not None else {}
            if 'when' in entry:
                params[entry['when']['param']] = entry['when']['equals']
            out.append({'command': cmd, 'operation': cli, 'params': params, 'risk': entry.get('risk', True)})
    json.dump(out, sys.stdout)


class Sentinels:
    def __init__(self):
        self.n = 0
        self.issued = []

    def next(self):
        self.n += 1
        s = 'SeNsItIvE%05dQz' % self.n
        self.issued.append(s)
        return s


def example(shape, sent, depth=0):
    """A value of `shape` whose every string (and blob) is a fresh sentinel."""
    t = shape.type_name
    if t == 'structure':
        if depth > 5:
            return {}
        return {m: example(s, sent, depth + 1) for m, s in shape.members.items()}
    if t == 'list':
        return [example(shape.member, sent, depth + 1), example(shape.member, sent, depth + 1)]
    if t == 'map':
        return {'key-one': example(shape.value, sent, depth + 1), 'key-two': example(shape.value, sent, depth + 1)}
    if t == 'string':
        return sent.next()
    if t == 'blob':
        return sent.next().encode('ascii')
    if t in ('integer', 'long'):
        return 7
    if t in ('float', 'double'):
        return 1.5
    if t == 'boolean':
        return True
    if t == 'timestamp':
        return datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    return sent.next()


def segments(path):
    import re
    return re.findall(r'\[\]|\{\}|[^.\[\]{}]+', path)


def along(shape, segs, sent):
    """A response holding an example value at the path and nothing else (lists and maps get two elements)."""
    if not segs:
        return example(shape, sent)
    head, rest = segs[0], segs[1:]
    if head == '[]':
        return [along(shape.member, rest, sent), along(shape.member, rest, sent)]
    if head == '{}':
        return {'key-one': along(shape.value, rest, sent), 'key-two': along(shape.value, rest, sent)}
    return {head: along(shape.members[head], rest, sent)}


def render(parsed, name):
    outs = {}
    for fmt in ('json', 'text', 'table'):
        args = argparse.Namespace(query=None, color='off', output=fmt)
        buf = io.StringIO()
        get_formatter(fmt, args)(name, parsed, buf)
        outs[fmt] = buf.getvalue()
    outs['yaml'] = yaml.safe_dump(json.loads(json.dumps(parsed, default=str)), default_flow_style=False)
    return outs


def mask_mode(data, plugin_dir, mask):
    sys.path.insert(0, plugin_dir)
    cfg_path = os.path.join(plugin_dir, 'guard_aws_mask.json')
    with open(cfg_path, encoding='utf-8') as f:
        base = json.load(f)
    cmds = index()
    plugin = None
    checked = 0
    leaks = []
    for cmd, ops in sorted(data['commands'].items()):
        sm = model(cmds[cmd]['service'])
        cfg = dict(base)
        cfg['paths'] = {}
        for entry in ops.values():
            cfg['paths'].setdefault(entry['o'], []).extend(entry['paths'])
        with open(cfg_path, 'w', encoding='utf-8') as f:
            json.dump(cfg, f)
        plugin = importlib.reload(plugin) if plugin else importlib.import_module('guard_aws_mask')
        for cli, entry in sorted(ops.items()):
            om = sm.operation_model(entry['o'])
            for path in entry['paths']:
                sent = Sentinels()
                parsed = along(om.output_shape, segments(path), sent)
                if not sent.issued:
                    leaks.append('%s %s %s: the path holds no string to test' % (cmd, cli, path))
                    continue
                plugin._after_call(parsed=parsed, model=om)
                for fmt, text in render(parsed, cli).items():
                    checked += 1
                    left = [s for s in sent.issued if s in text]
                    if left or mask not in text:
                        leaks.append('%s %s %s --output %s: %s' % (cmd, cli, path, fmt, 'no mask' if not left else 'leaks %d value(s)' % len(left)))
    json.dump({'checked': checked, 'leaks': leaks}, sys.stdout)


if __name__ == '__main__':
    with open(sys.argv[2], encoding='utf-8') as f:
        data = json.load(f)
    if sys.argv[1] == 'argv':
        argv_mode(data)
    else:
        mask_mode(data, sys.argv[3], sys.argv[4])
