#!/usr/bin/env node
// Writes the JSON Schemas of guard-aws's two YAML file formats, generated from the zod schemas the loaders use
// (zod 4's z.toJSONSchema), so editors can check and complete the files as they are typed:
//   docs/schema/broker-config.schema.json  ← src/broker/config.ts brokerConfigSchema
//   docs/schema/policy.schema.json         ← src/policy/schema.ts policyFileSchema
// Run `npm run gen:schemas` after changing either schema; test/config/json-schemas.test.ts fails until then.
// The schemas describe what the loaders check by shape; cross-field rules (one default target, an `approve` rule
// needs `approval`, one operator per condition) are checked by guard-aws itself, not by the schema.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const SCHEMA_FILES = {
  broker: 'docs/schema/broker-config.schema.json',
  policy: 'docs/schema/policy.schema.json',
};

function render(schema, title, description) {
  // `input`: what a person writes (keys with defaults are optional), not the parsed result.
  const { $schema, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' });
  return `${JSON.stringify({ $schema, title, description, ...rest }, null, 2)}\n`;
}

/** The file texts, from the zod schemas given (the built ones here, the sources in the test). */
export function renderSchemas({ brokerConfigSchema, policyFileSchema }) {
  return {
    [SCHEMA_FILES.broker]: render(
      brokerConfigSchema,
      'guard-aws broker configuration',
      'The file given to `guard-aws broker --config FILE`; see docs/broker-config.md. Generated from src/broker/config.ts by scripts/gen-schemas.mjs.',
    ),
    [SCHEMA_FILES.policy]: render(
      policyFileSchema,
      'guard-aws policy file',
      'A policy file (version 1); see docs/policies.md. Generated from src/policy/schema.ts by scripts/gen-schemas.mjs.',
    ),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const [{ brokerConfigSchema }, { policyFileSchema }] = await Promise.all([
    import(join(root, 'dist/broker/config.js')),
    import(join(root, 'dist/policy/schema.js')),
  ]);
  for (const [path, text] of Object.entries(renderSchemas({ brokerConfigSchema, policyFileSchema }))) {
    writeFileSync(join(root, path), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
