"""Runs argvs through the REAL installed AWS CLI driver (v1 or v2, whichever Python runs it), in-process, and reports
what it would send.

Used by test/invocation/real-cli.test.ts (differential test). For each argv (JSON list of lists on stdin) the
CLI parses and unpacks arguments exactly as usual; a `provide-client-params` handler records the first API
call's operation and parameters and then aborts it, so nothing is ever sent. Output: one JSON list written to the file named by argv[1].
"""
import io
import json
import os
import sys
import contextlib

from awscli.clidriver import create_clidriver


class Stop(Exception):
    pass


def run(argv):
    driver = create_clidriver()
    seen = {'calls': [], 'globals': None}

    def on_globals(parsed_args, **kwargs):
        g = vars(parsed_args)
        seen['globals'] = {k: g.get(k) for k in ('region', 'profile', 'endpoint_url', 'output', 'query', 'debug')
                           if g.get(k) not in (None, False)}
        if seen['globals'].get('query') is not None:
            seen['globals']['query'] = 'present'  # compiled JMESPath: presence only

    def on_params(params, model, **kwargs):
        seen['calls'].append({'operation': model.name, 'params': params})
        raise Stop()

    driver.session.register('top-level-args-parsed', on_globals)
    driver.session.register('provide-client-params', on_params)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = driver.main(argv)
        except SystemExit as e:
            rc = e.code
        except Stop:
            rc = 'stopped'
    return {'rc': rc, 'calls': seen['calls'], 'globals': seen['globals'], 'stderr': err.getvalue()[-300:]}


def main():
    argvs = json.load(sys.stdin)
    results = []
    for argv in argvs:
        try:
            results.append(run(argv))
        except Exception as e:  # report, never hide
            results.append({'rc': 'exception', 'error': repr(e), 'calls': [], 'globals': None})
    # Results go to a file: help renders through a pager that writes to the real stdout.
    with open(sys.argv[1], 'w') as f:
        json.dump(results, f, default=lambda o: o.decode('utf-8', 'replace') if isinstance(o, bytes) else repr(o))


if __name__ == '__main__':
    main()
