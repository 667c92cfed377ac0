import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { brokerConfigSchema } from '../../src/broker/config.js';
import { policyFileSchema } from '../../src/policy/schema.js';

const root = join(import.meta.dirname, '../..');

interface Generator {
  renderSchemas(s: { brokerConfigSchema: unknown; policyFileSchema: unknown }): Record<string, string>;
  SCHEMA_FILES: { broker: string; policy: string };
}
// The generator is the script itself (a plain .mjs run by `npm run gen:schemas` on the built code); here it is
// given the source schemas, so a schema change without regenerating fails this test.
const gen = (await import(pathToFileURL(join(root, 'scripts/gen-schemas.mjs')).href)) as Generator;
const texts = gen.renderSchemas({ brokerConfigSchema, policyFileSchema });

type JsonSchema = { properties: Record<string, JsonSchema & { items?: JsonSchema; anyOf?: JsonSchema[] }>; items?: JsonSchema };

describe('published JSON Schemas of the YAML files', () => {
  it('are what the zod schemas generate (run `npm run gen:schemas` after changing one)', () => {
    for (const [path, text] of Object.entries(texts)) {
      expect(readFileSync(join(root, path), 'utf8'), `${path} is out of date: run npm run gen:schemas`).toBe(text);
    }
  });

  it('spell every key in camelCase, and docs name every key', () => {
    const policy = JSON.parse(texts[gen.SCHEMA_FILES.policy]!) as JsonSchema;
    const rule = policy.properties.rules!.items!;
    const match = rule.properties.match!.properties;
    const condition = match.params!.items!.properties;
    const broker = JSON.parse(texts[gen.SCHEMA_FILES.broker]!) as JsonSchema;
    const keys = [...Object.keys(policy.properties), ...Object.keys(rule.properties), ...Object.keys(match), ...Object.keys(condition), ...Object.keys(broker.properties)];
    for (const k of keys) expect(k, `${k} is not camelCase`).toMatch(/^[a-z][A-Za-z0-9]*$/);

    const policiesDoc = readFileSync(join(root, 'docs/policies.md'), 'utf8');
    for (const k of [...Object.keys(match), ...Object.keys(condition)]) expect(policiesDoc, `docs/policies.md does not mention \`${k}\``).toContain(`\`${k}\``);
    const brokerDoc = readFileSync(join(root, 'docs/broker-config.md'), 'utf8');
    for (const k of Object.keys(broker.properties)) expect(brokerDoc, `docs/broker-config.md does not mention \`${k}\``).toMatch(new RegExp(`\`${k}[.\`]`));
  });
});
