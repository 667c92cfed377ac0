"""Dump, for every CLI operation in data/aws-model, where its response holds a shape botocore marks
`"sensitive": true`, as JSON on stdout.

Run by scripts/gen-sensitive-outputs.mjs at build time only (guard-aws needs no Python at run time). Paths use
the member names of the parsed response (what the CLI formats): `Environment.Variables`, `items[].value`,
`Map{}` for a map's values. Also dumps the enum values of members named like a secret field (the curated names
in src/masking/rules.ts, given as argv), so name-based masking can leave enum constants such as Cognito's
`TokenValidityUnits.AccessToken: "hours"` alone.
"""
import json
import os
import sys

import botocore
import botocore.session

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def walk(shape, path, member, stack, out):
    if shape is None:
        return
    if shape.metadata.get('sensitive'):
        # A list of name/value pairs (ECS container environments): the names are labels, only the values secret.
        item = shape.member if shape.type_name == 'list' else None
        if item is not None and item.type_name == 'structure' and sorted(m.lower() for m in item.members) == ['name', 'value']:
            value = next(m for m in item.members if m.lower() == 'value')
            out.append([path + '[].' + value, shape.name, member])
            return
        out.append([path, shape.name, member])
        return
    # Recursive shapes (document trees, nested filters): a shape already on the path adds no new field.
    if shape.name in stack:
        return
    stack = stack | {shape.name}
    t = shape.type_name
    if t == 'structure':
        for name, m in shape.members.items():
            walk(m, (path + '.' if path else '') + name, name, stack, out)
    elif t == 'list':
        walk(shape.member, path + '[]', member, stack, out)
    elif t == 'map':
        walk(shape.value, path + '{}', member, stack, out)


def enum_walk(shape, names, stack, out):
    if shape is None or shape.name in stack:
        return
    stack = stack | {shape.name}
    t = shape.type_name
    if t == 'structure':
        for name, m in shape.members.items():
            if name.lower() in names and m.type_name == 'string' and m.metadata.get('enum'):
                out.setdefault(name.lower(), set()).update(m.metadata['enum'])
            enum_walk(m, names, stack, out)
    elif t == 'list':
        enum_walk(shape.member, names, stack, out)
    elif t == 'map':
        enum_walk(shape.value, names, stack, out)


def main():
    names = {n.lower() for n in sys.argv[1:]}
    session = botocore.session.get_session()
    with open(os.path.join(ROOT, 'data/aws-model/index.json'), encoding='utf-8') as f:
        index = json.load(f)
    commands = {}
    enums = {}
    for cmd, entry in index['commands'].items():
        if 'service' not in entry:
            continue
        with open(os.path.join(ROOT, 'data/aws-model', entry['file']), encoding='utf-8') as f:
            ops = json.load(f)['ops']
        model = session.get_service_model(entry['service'])
        found = {}
        for cli, op in ops.items():
            om = model.operation_model(op['o'])
            out = []
            walk(om.output_shape, '', '', frozenset(), out)
            enum_walk(om.output_shape, names, frozenset(), enums)
            if out:
                found[cli] = {'o': op['o'], 'sensitive': out}
        if found:
            commands[cmd] = found
    json.dump({
        'botocoreVersion': botocore.__version__,
        'commands': commands,
        'enums': {k: sorted(v) for k, v in sorted(enums.items())},
    }, sys.stdout)


if __name__ == '__main__':
    main()
