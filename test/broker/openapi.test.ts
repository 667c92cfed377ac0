import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { grantRequestSchema } from '../../src/broker/routes/grants.js';
import { BROKER_ERROR_CODES } from '../../src/api/errors.js';
import { parseInvocation } from '../../src/invocation/parse.js';
import { alice, approveDecision, newService } from '../approvals/fixtures.js';

const doc = parse(readFileSync(resolve(__dirname, '../../docs/openapi.yaml'), 'utf8'));

describe('docs/openapi.yaml', () => {
  it('is OpenAPI 3.1 and describes every broker route', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/metrics', '/v1/config', '/v1/grants']));
  });
  it('GrantRequest documents exactly the fields the broker validates', async () => {
    const documented = Object.keys(doc.components.schemas.GrantRequest.properties).sort();
    expect(documented).toEqual(Object.keys(grantRequestSchema.shape).sort());
    expect(doc.components.schemas.GrantRequest.additionalProperties).toBe(false);
  });
  it('cliVersion: the documented pattern accepts and refuses what the broker does; GrantResponse names the table used', async () => {
    const pattern = new RegExp(doc.components.schemas.GrantRequest.properties.cliVersion.pattern);
    const key = 'A'.repeat(43);
    for (const v of ['2.9.19', '1.45.11', '2.31.4', '2.9', 'v2.9.19', '2.9.19 ', '2.9.19.1', '']) {
      const accepted = grantRequestSchema.safeParse({ argv: ['s3', 'ls'], transcriptKey: key, cliVersion: v }).success;
      expect(pattern.test(v), v).toBe(accepted);
    }
    expect(doc.components.schemas.GrantResponse.properties.cliTable.type).toBe('string');
  });
  it('the Error code enum is exactly the closed wire vocabulary (src/api/errors.ts)', async () => {
    const documented: string[] = doc.components.schemas.Error.properties.error.properties.code.enum;
    expect([...documented].sort()).toEqual([...BROKER_ERROR_CODES].sort());
  });
  it('ApprovalSummary and ApprovalParameter document every field a real request has (the decoded parameters included)', async () => {
    const { service } = await newService();
    const inv = parseInvocation(['ec2', 'run-instances', '--image-id', 'ami-1', '--user-data', 'file://boot.sh', '--cli-input-json', '{"MaxCount":1}'], {
      account: '123456789012',
      region: 'us-east-1',
      cwd: '/w',
      fileContents: { '/w/boot.sh': `#!/bin/sh\n${'x'.repeat(5000)}\nAKIAIOSFODNN7EXAMPLE\n` },
    });
    const a = await service.open({ requester: alice, invocation: inv, target: 'prod', decision: approveDecision(), reason: 'r' });
    const summary = doc.components.schemas.ApprovalSummary;
    expect(Object.keys(summary.properties)).toEqual(expect.arrayContaining(Object.keys(a)));
    const parameter = doc.components.schemas.ApprovalParameter;
    const fields = new Set(a.parameters!.flatMap((p) => Object.keys(p)));
    expect(fields).toContain('truncated');
    expect(fields).toContain('source');
    expect(Object.keys(parameter.properties)).toEqual(expect.arrayContaining([...fields]));
    expect(Object.keys(parameter.properties).sort()).toEqual(['bytes', 'encoding', 'masked', 'name', 'secretsMasked', 'sha256', 'source', 'truncated', 'value']);
    expect(summary.properties.parameters.items.$ref).toBe('#/components/schemas/ApprovalParameter');
  });
  it('every $ref resolves', async () => {
    const refs = JSON.stringify(doc).match(/"\$ref":"#\/[^"]+"/g) ?? [];
    for (const r of refs) {
      const path = r.slice(9, -1).split('/').slice(1);
      let node = doc;
      for (const p of path) node = node?.[p];
      expect(node, r).toBeDefined();
    }
  });
});

describe('docs/openapi.yaml: runs', () => {
  it('RunRequest documents exactly the fields the broker validates, and every run route is there', async () => {
    const { runRequestSchema } = await import('../../src/broker/routes/runs.js');
    expect(Object.keys(doc.components.schemas.RunRequest.properties).sort()).toEqual(Object.keys(runRequestSchema.shape).sort());
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/runs', '/v1/runs/{id}/start', '/v1/runs/{id}/stdin', '/v1/runs/{id}/inputs/{token}', '/v1/runs/{id}/cancel']),
    );
  });
});
