import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { openApiDocument } from '../../functions/profile/openapi.js';

let ajv: Ajv2020 | undefined;

/** What is wrong with `body` against a component schema of the profile function's OpenAPI document. */
export function apiSchemaProblems(schema: string, body: unknown): string[] {
  if (!ajv) {
    const config = loadProfileConfig({});
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(openApiDocument(config.ID_TYPES_JSON, config), 'openapi.json');
  }
  const validate = ajv.getSchema(`openapi.json#/components/schemas/${schema}`);
  if (!validate) throw new Error(`no schema ${schema}`);
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}
