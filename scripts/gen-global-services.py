#!/usr/bin/env python3
"""Writes data/global-services.json: the IAM service prefixes whose requests AWS does not evaluate in the
region the caller names, so a session policy must not pin `aws:RequestedRegion` for them.

Rule (from botocore's endpoint model of the `aws` partition, data/endpoints.json, shipped with the AWS CLI):
  - `isRegionalized: false`: the service has one global endpoint (IAM, CloudFront, Route 53, Organizations…);
  - a `partitionEndpoint` on a regionalized service: some regions' requests go to that global endpoint
    (STS's legacy `sts_regional_endpoints` mode, Support), so the request's region is not the one named.
    S3 is the exception: its `aws-global` endpoint only ever serves us-east-1 (its credentialScope), so an
    S3 request is always evaluated in the region it names, and S3 stays pinned.
For these, AWS documents that aws:RequestedRegion is us-east-1 whatever the caller asked (IAM User Guide,
"AWS global condition context keys", aws:RequestedRegion).

Endpoint prefixes are mapped to IAM prefixes (Service Authorization Reference) through each service model's
signingName; the few that differ are named below. Run: python3 scripts/gen-global-services.py
"""
import gzip
import json
import os
import sys

import botocore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(botocore.__file__), 'data')
# IAM prefixes that are neither the endpoint prefix nor the signing name (Service Authorization Reference).
ALIASES = {'mturk-requester': 'mechanicalturk'}
# Regionalized despite a partitionEndpoint (see the docstring).
REGIONAL_DESPITE_GLOBAL_ENDPOINT = {'s3'}


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    with gzip.open(path + '.gz', 'rt') as f:
        return json.load(f)


def signing_names():
    out = {}
    for service in sorted(os.listdir(DATA)):
        folder = os.path.join(DATA, service)
        if not os.path.isdir(folder):
            continue
        for version in sorted(os.listdir(folder), reverse=True):
            try:
                meta = load(os.path.join(folder, version, 'service-2.json'))['metadata']
            except (FileNotFoundError, NotADirectoryError):
                continue
            prefix = meta.get('endpointPrefix')
            if prefix:
                out.setdefault(prefix, set()).add(meta.get('signingName', prefix))
            break
    return out


def main():
    endpoints = load(os.path.join(DATA, 'endpoints.json'))
    aws = next(p for p in endpoints['partitions'] if p['partition'] == 'aws')
    names = signing_names()
    iam_dir = os.path.join(ROOT, 'data', 'iam')
    prefixes, unmapped = set(), []
    for endpoint_prefix, service in sorted(aws['services'].items()):
        is_global = service.get('isRegionalized') is False or (
            'partitionEndpoint' in service and endpoint_prefix not in REGIONAL_DESPITE_GLOBAL_ENDPOINT
        )
        if not is_global:
            continue
        candidates = [ALIASES.get(endpoint_prefix), *sorted(names.get(endpoint_prefix, ())), endpoint_prefix]
        found = [c for c in candidates if c and os.path.exists(os.path.join(iam_dir, c + '.json'))]
        if found:
            prefixes.add(found[0])
        else:
            unmapped.append(endpoint_prefix)
    out = {
        'source': f'botocore {botocore.__version__} data/endpoints.json (partition aws), by scripts/gen-global-services.py',
        'prefixes': sorted(prefixes),
    }
    with open(os.path.join(ROOT, 'data', 'global-services.json'), 'w') as f:
        json.dump(out, f, indent=2)
        f.write('\n')
    if unmapped:
        print('no IAM prefix for global endpoint prefixes: ' + ', '.join(unmapped), file=sys.stderr)


if __name__ == '__main__':
    main()
