"""The generated corpus: one argv per API operation of EVERY service the installed AWS CLI has, each checked by the
real CLI's own argument parsing and botocore's parameter validation, with no network I/O.

Run with the Python the CLI runs on (v1: `python3`; Debian's v2 package: `/usr/bin/python3`), from an empty
working directory: `python3 cli-corpus.py OUT.jsonl`. Used by test/invocation/coverage.test.ts.

How an argv is made (from the CLI's own tables, not from guard-aws's): for each service command and each of its
operation commands (the CLI's `ServiceOperation`s; customisations such as `s3 cp` or `ec2 wait` are not API
operations), every argument the CLI marks required gets a value from its botocore shape (`required` members,
enums, min lengths, min values). Identifiers get recognisable values: a member ending in Arn/ARN gets an ARN built
from the Service Authorization Reference template of the service's resource type named like the member
(data/iam), a role a role ARN, a queue URL a queue URL, an account id 111122223333, names and ids
`example-<member>`. Nested structures are passed as JSON, lists of scalars as separate tokens, blobs as base64
(which v1 and v2 both accept), streaming input as a file in the working directory, streaming output as a
positional file name.

How it is checked: the argv runs through the real `awscli.clidriver` in this process (one driver for every argv).
A `before-call` handler stops the call: botocore emits it after the CLI has parsed and unpacked every argument,
after endpoint resolution and after its ParamValidator and serializer have accepted the parameters, and before
anything is signed or sent (botocore/client.py `_make_api_call`). Sockets are disabled besides, so an argv that
somehow reached the network fails instead. An argv the CLI rejects (argparse error, validation error) is kept in
the output with `ok: false` and the reason, so the caller can count and drop it.

Output: one JSON object per line {cli, command, operation, service, api, argv, ok, params (the API parameters
the CLI would send) or reason (why it rejected the argv)}.
"""
import contextlib
import io
import json
import os
import re
import socket
import sys

ACCOUNT = '111122223333'
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'data', 'iam')


class Stop(BaseException):
    """Raised by the before-call handler: the request was validated and would now be sent. A BaseException, so
    that v1's `except Exception` (clidriver.main) lets it through; v2 catches everything, hence also a flag."""


def no_network(*_args, **_kwargs):
    raise OSError('cli-corpus.py: network disabled')


# Nothing may leave the machine: any connection attempt fails (and the argv is reported as failing).
socket.socket.connect = no_network
socket.create_connection = no_network

_templates = {}


def templates(prefix):
    if prefix not in _templates:
        path = os.path.join(DATA, prefix + '.json')
        _templates[prefix] = json.load(open(path))['r'] if os.path.exists(path) else {}
    return _templates[prefix]


def norm(text):
    return re.sub(r'[^a-z0-9]', '', text.lower())


def arn_for(prefix, kind):
    """An ARN of the service's resource type whose name is closest to the member's (`TopicArn` -> topic), from
    the Service Authorization Reference templates in data/iam, every variable filled with an example value."""
    table = templates(prefix)
    k = norm(kind)
    choice = next((t for name, t in table.items() if norm(name) == k), None)
    choice = choice or next((t for name, t in table.items() if k and (k.endswith(norm(name)) or norm(name).endswith(k) or norm(name).startswith(k))), None)
    # A member named for no resource type (`ResourceArn`): the service's first resource type of its own (SAR lists
    # other services' types too: EventBridge's starts with a KMS alias), so that the ARN has a shape the service's
    # endpoint rules accept (Kinesis and CloudFront parse ARNs before sending).
    own = [t for t in table.values() if t.startswith('arn:${Partition}:%s:' % prefix)]
    choice = choice or next(iter(own or list(table.values())), None)
    if not choice:
        return 'arn:aws:%s:us-east-1:%s:%s/example' % (prefix, ACCOUNT, kind or 'resource')
    choice = choice.split(', ')[0]

    def fill(m):
        name = m.group(1)
        if name == 'Partition':
            return 'aws'
        if 'Region' in name:
            return 'us-east-1'
        if 'Account' in name:
            return ACCOUNT  # `${Account}`, and Chime's `${AccountId}`
        return 'example-' + name.lower()

    parts = re.sub(r'\$\{(\w+)\}', fill, choice).split(':', 5)
    # A template with a literal `*` region or account (Braket's devices) stands for ARNs with none.
    if len(parts) == 6:
        parts[3] = 'us-east-1' if parts[3] == '*' else parts[3]
        parts[4] = '' if parts[4] == '*' else parts[4]
        # …and a literal `*` in the resource (DMS's `endpoint:*`, Health's events) for any name: one example name.
        parts[5] = parts[5].replace('*', 'example')
    return ':'.join(parts)


def iam_prefix(service_model):
    """The service's IAM prefix as data/iam names it: the signing name mostly, the service name where SAR uses it
    (CloudWatch signs as `monitoring`, its actions are `cloudwatch:`)."""
    candidates = [service_model.signing_name, service_model.endpoint_prefix, service_model.service_name]
    return next((c for c in candidates if c and os.path.exists(os.path.join(DATA, c + '.json'))), candidates[0] or candidates[1])


def is_streaming(shape):
    return bool(getattr(shape, 'serialization', {}).get('streaming') or getattr(shape, 'metadata', {}).get('streaming'))


def string_value(shape, member, prefix):
    if getattr(shape, 'enum', None):
        return shape.enum[0]
    text = identifier(member.lower(), prefix)
    need = int(shape.metadata.get('min', 1))
    most = shape.metadata.get('max')
    text = text + 'x' * max(0, need - len(text))
    if most is not None and len(text) > int(most):
        text = text[: max(int(most), need)]
    return text


def identifier(lower, prefix):
    """A recognisable value for a string member named `lower`."""
    if lower.endswith('rolearn') or lower.endswith('rolearns'):
        return 'arn:aws:iam::%s:role/example-role' % ACCOUNT
    if lower == 'subscriptionarn':
        # An SNS subscription is its topic's ARN plus `:ID` (SNS API Reference, Subscribe).
        return 'arn:aws:sns:us-east-1:%s:example-topic:0f2b5c1e-1d1e-4b8a-9d3e-5f6a7b8c9d0e' % ACCOUNT
    if lower.endswith('arn') or lower.endswith('arns'):
        return arn_for(prefix, lower[:-4] if lower.endswith('arns') else lower[:-3])
    if lower == 'queueurl':
        return 'https://sqs.us-east-1.amazonaws.com/%s/example-queue' % ACCOUNT
    if 'account' in lower and lower.endswith('id'):
        return ACCOUNT
    if lower.endswith('url') or lower.endswith('uri'):
        return 'https://example.com/%s/example' % ACCOUNT
    return 'example-' + (re.sub(r'[^a-z0-9-]', '', lower) or 'value')


def value_for(shape, member, prefix, depth=0):
    """A value for a shape as botocore accepts it (None when it cannot be built)."""
    if depth > 8:
        return None
    t = shape.type_name
    if t == 'structure':
        out = {}
        names = list(shape.required_members)
        # A union (exactly one member set) with no required list: take the first member.
        if not names and shape.metadata.get('union') and shape.members:
            names = [next(iter(shape.members))]
        for name in names:
            v = value_for(shape.members[name], name, prefix, depth + 1)
            if v is None:
                return None
            out[name] = v
        return out
    if t == 'list':
        v = value_for(shape.member, member, prefix, depth + 1)
        if v is None:
            return None
        return [v] * max(1, int(shape.metadata.get('min', 1)))
    if t == 'map':
        k = value_for(shape.key, 'key', prefix, depth + 1)
        v = value_for(shape.value, 'value', prefix, depth + 1)
        if k is None or v is None:
            return None
        return {k: v}
    if t in ('integer', 'long'):
        return max(int(shape.metadata.get('min', 1)), 1)
    if t in ('double', 'float'):
        return max(float(shape.metadata.get('min', 1)), 1.0)
    if t == 'boolean':
        return True
    if t == 'timestamp':
        return '2024-01-01T00:00:00Z'
    if t == 'blob':
        return 'aGVsbG8='
    if t == 'string':
        return string_value(shape, member, prefix)
    if t == 'document':
        return {}
    return None


def argv_for(command, op_name, operation, prefix):
    """The argv for one operation command: the arguments the CLI marks required, and those of members botocore
    requires that a customisation made optional in the CLI (`lambda create-function --code`, which `--zip-file`
    can replace), in the CLI's own names."""
    argv = [command, op_name]
    positionals = []
    input_shape = operation._operation_model.input_shape
    required_members = set(input_shape.required_members) if input_shape is not None else set()
    for arg in operation.arg_table.values():
        member = getattr(arg, '_serialized_name', None) or arg.name
        positional = getattr(arg, 'positional_arg', False) or not getattr(arg, 'cli_name', '--').startswith('-')
        if not getattr(arg, 'required', False) and member not in required_members and not positional:
            continue
        cli_name = getattr(arg, 'cli_name', '--' + arg.name)
        if getattr(arg, 'positional_arg', False) or not cli_name.startswith('-'):
            positionals.append('out.bin')  # a streaming output's file
            continue
        choices = getattr(arg, 'choices', None)
        if choices:
            argv += [cli_name, sorted(choices)[0]]
            continue
        shape = getattr(arg, 'argument_model', None)
        if shape is None:
            return None, 'required custom argument %s has no model' % cli_name
        if shape.type_name == 'boolean':
            argv.append(cli_name)
            continue
        if shape.type_name == 'blob' and is_streaming(shape):
            argv += [cli_name, 'in.bin']
            continue
        value = value_for(shape, member, prefix)
        if value is None:
            return None, 'no value for %s' % cli_name
        argv.append(cli_name)
        if shape.type_name == 'list' and not isinstance(value[0], (dict, list)):
            argv += [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
        elif isinstance(value, (dict, list)):
            argv.append(json.dumps(value))
        elif isinstance(value, bool):
            argv.append(str(value).lower())
        else:
            argv.append(str(value))
    # Right after the operation: at the end, a list option (`--fragments a b`) would take it as one more element.
    return argv[:2] + positionals + argv[2:], None


def fresh_driver(create_clidriver, memo):
    """A CLI driver whose API calls stop at `before-call` (after validation, before signing and sending)."""
    driver = create_clidriver()

    def on_params(params, **kwargs):
        driver.sent = params

    def on_call(**kwargs):
        driver.stopped = True
        raise Stop()

    driver.sent = None
    driver.stopped = False
    driver.session.register('provide-client-params', on_params)
    driver.session.register('before-call', on_call)
    if memo:
        create = driver.session.create_client
        clients = {}

        def create_client(service_name, *args, **kwargs):
            config = kwargs.get('config')
            options = sorted(getattr(config, '_user_provided_options', {}).items()) if config is not None else None
            key = (service_name, repr(args), repr(sorted((k, repr(v)) for k, v in kwargs.items() if k != 'config')), repr(options))
            if key not in clients:
                clients[key] = create(service_name, *args, **kwargs)
            return clients[key]

        driver.session.create_client = create_client
    return driver


def plain(value):
    """Parameters as JSON: a streaming body (an open file) and bytes are named, not read."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return '<bytes>'
    return '<%s>' % type(value).__name__


def run(driver, argv):
    """(True, params) when the CLI would send the request with these API parameters; (False, reason) when it
    rejects the argv."""
    driver.sent = None
    driver.stopped = False
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = driver.main(argv)
        # v2's driver catches every exception, Stop included, and returns an exit code: the flag tells.
        if driver.stopped:
            return True, plain(driver.sent)
        return False, 'finished without calling (rc %s): %s' % (rc, err.getvalue().strip()[-300:])
    except Stop:
        return True, plain(driver.sent)
    except SystemExit as e:
        return False, 'exit %s: %s' % (e.code, err.getvalue().strip()[-300:])
    except Exception as e:
        return False, '%s: %s' % (type(e).__name__, str(e)[:300])


def main():
    from awscli.clidriver import create_clidriver

    out_path = sys.argv[1]
    only = set(sys.argv[2:])
    import awscli
    cli = 'v%s' % awscli.__version__.split('.')[0]
    with open('in.bin', 'wb') as f:
        f.write(b'hello')
    top_driver = create_clidriver()
    commands = sorted(top_driver._get_command_table())
    out = open(out_path, 'w')
    for command in commands:
        if only and command not in only:
            continue
        # One driver per service: a customisation may leave state behind in the driver it ran in. Within a service,
        # clients are reused (creating one is half the cost of a call); an argv that fails is tried again in a
        # fresh driver without reuse, so a failure is never an artefact of either.
        driver = fresh_driver(create_clidriver, memo=True)
        service_command = driver._get_command_table()[command]
        get_table = getattr(service_command, '_get_command_table', None)
        if get_table is None or not hasattr(service_command, '_get_service_model'):
            continue
        try:
            table = get_table()
        except Exception as e:  # a service the CLI cannot load
            print('skip %s: %r' % (command, e), file=sys.stderr)
            continue
        for op_name in sorted(table):
            operation = table[op_name]
            model = getattr(operation, '_operation_model', None)
            if model is None:
                continue  # a customisation (`wait`, `get-login-password`…), not an API operation
            service_model = model.service_model
            prefix = iam_prefix(service_model)
            row = {'cli': cli, 'command': command, 'operation': op_name, 'service': service_model.service_name, 'api': model.name}
            try:
                argv, why = argv_for(command, op_name, operation, prefix)
            except Exception as e:
                argv, why = None, 'generator: %r' % e
            if argv is None:
                row.update(argv=None, ok=False, reason=why)
            else:
                row['argv'] = argv
                ok, reason = run(driver, argv)
                if not ok and 'Unable to retrieve http' in reason:
                    # v1 fetches an http(s) value of a parameter that is not a URL by nature (paramfile.py): give it
                    # an s3:// URI instead, which no CLI fetches.
                    argv = [t.replace('https://example.com/', 's3://example-bucket/') for t in argv]
                    row['argv'] = argv
                    ok, reason = run(driver, argv)
                if not ok:
                    ok, reason = run(fresh_driver(create_clidriver, memo=False), argv)
                    if ok:
                        # The shared driver was left in a state one command per process never sees (v1's EC2
                        # boolean pull-up registers a check for every later `ec2` command): start a new one.
                        driver = fresh_driver(create_clidriver, memo=True)
                row['ok'] = ok
                row['params' if ok else 'reason'] = reason
            out.write(json.dumps(row) + '\n')
    out.close()


if __name__ == '__main__':
    main()
