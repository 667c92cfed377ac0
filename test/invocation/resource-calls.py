"""One call per API operation of the given botocore services, with every REQUIRED member filled (botocore's own
models: `required` lists, shapes, enums, min lengths), for test/invocation/resource-agreement.test.ts.

Input: botocore service names as arguments. Output (stdout): one JSON object per line,
{"service": ..., "operation": ..., "params": {Member: value}}, values as the CLI accepts them in JSON.
Identifiers get recognisable values: a member ending in Arn/ARN gets an ARN built from the Service Authorization
Reference template of the service's resource type named like the member (data/iam), a queue URL a real queue
URL, names and ids `example-<member>`. Nothing is sent anywhere; this only reads the models.
"""
import json
import os
import re
import sys

import botocore.session

ACCOUNT = '111122223333'
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'iam')


def templates(prefix):
    path = os.path.join(DATA, prefix + '.json')
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)['r']


def arn_for(prefix, kind):
    """An ARN of the service's resource type whose name is closest to the member's (`TopicArn` -> topic), from
    the Service Authorization Reference templates in data/iam, every variable filled with an example value."""
    table = templates(prefix)
    norm = lambda text: re.sub(r'[^a-z0-9]', '', text.lower())
    choice = next((t for name, t in table.items() if norm(name) == norm(kind)), None)
    choice = choice or next((t for name, t in table.items() if norm(kind) and (norm(kind).endswith(norm(name)) or norm(name).endswith(norm(kind)) or norm(name).startswith(norm(kind)))), None)
    if not choice:
        return 'arn:aws:%s:us-east-1:%s:%s/example' % (prefix, ACCOUNT, kind or 'resource')
    choice = choice.split(', ')[0]
    values = {'Partition': 'aws', 'Region': 'us-east-1', 'Account': ACCOUNT}
    return re.sub(r'\$\{(\w+)\}', lambda m: values.get(m.group(1), 'example-' + m.group(1).lower()), choice)


def value_for(shape, member, service, depth=0):
    if depth > 6:
        return None
    t = shape.type_name
    if t == 'structure':
        out = {}
        for name in shape.required_members:
            v = value_for(shape.members[name], name, service, depth + 1)
            if v is None:
                return None
            out[name] = v
        return out
    if t == 'list':
        v = value_for(shape.member, member, service, depth + 1)
        return None if v is None else [v]
    if t == 'map':
        return {'k': 'v'}
    if t in ('integer', 'long'):
        return max(int(shape.metadata.get('min', 1)), 1)
    if t in ('double', 'float'):
        return 1.0
    if t == 'boolean':
        return True
    if t == 'timestamp':
        return '2024-01-01T00:00:00Z'
    if t == 'blob':
        return 'aGVsbG8='
    if t == 'string':
        if shape.enum:
            return shape.enum[0]
        lower = member.lower()
        if lower.endswith('rolearn'):
            return 'arn:aws:iam::%s:role/example-role' % ACCOUNT
        if lower.endswith('arn') or lower.endswith('arns'):
            return arn_for(service, lower[:-4] if lower.endswith('arns') else lower[:-3])
        if lower == 'queueurl':
            return 'https://sqs.us-east-1.amazonaws.com/%s/example-queue' % ACCOUNT
        if 'account' in lower and lower.endswith('id'):
            return ACCOUNT
        if lower.endswith('url'):
            return 'https://example.com/%s/example' % ACCOUNT
        text = 'example-' + (member.lower() or 'value')
        need = int(shape.metadata.get('min', 1))
        return text + 'x' * max(0, need - len(text))
    return None


def main():
    session = botocore.session.get_session()
    for service in sys.argv[1:]:
        model = session.get_service_model(service)
        prefix = model.signing_name or model.endpoint_prefix
        for op_name in model.operation_names:
            op = model.operation_model(op_name)
            params = {}
            if op.input_shape is not None:
                params = value_for(op.input_shape, '', prefix)
            if params is None:
                continue
            print(json.dumps({'service': service, 'operation': op_name, 'params': params}))


if __name__ == '__main__':
    main()
