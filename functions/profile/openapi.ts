import { z } from 'zod';
import { MAX_BODY_BYTES, MAX_URL_CHARS } from '../../shared/http/harden-framework.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { apiSchemas } from './api-schemas.js';
import { type RequestLimits, requestSchemas } from './request-schemas.js';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
const either = (full: string, flat: string, description: string) => ({
  'application/json': { schema: { anyOf: [ref(full), ref(flat)], description } },
});
const header = (description: string, schema: object = { type: 'string' }) => ({
  description,
  schema,
});
const error = (description: string, headers?: Record<string, object>) => ({
  description,
  content: json('Error'),
  ...(headers ? { headers } : {}),
});
const retryAfter = {
  'Retry-After': header('Seconds to wait before retrying.', { type: 'integer' }),
};
const VIEWS =
  'The view the request asks for (view) selects the schema: ProfileResponse for the full view (default), FlatProfileResponse for view=flat.';

/** What the document says of the service's settings. */
export interface OpenApiSettings extends RequestLimits {
  readonly BATCH_MAX_PROFILES: number;
  readonly BATCH_MAX_ANSWER_BYTES: number;
  readonly API_KEYS: readonly string[];
}

/** A zod schema as the JSON Schema of an OpenAPI 3.1 parameter or body (its description apart). */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12' }) as Record<string, unknown>;
  delete out.$schema;
  delete out.description;
  return out;
}

/**
 * The OpenAPI 3.1 document of the profile function: its request parameters and batch body from
 * the very zod schemas that check requests (request-schemas.ts), its answers from the zod schemas
 * that describe them (api-schemas.ts), its limits and id types from the configuration.
 */
export function openApiDocument(
  idTypes: IdTypeRegistry,
  settings: OpenApiSettings,
): Record<string, unknown> {
  const req = requestSchemas(idTypes, settings);
  const { schemas } = z.toJSONSchema(apiSchemas, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  });
  // Fragment $ids are not valid JSON Schema; components are addressed by their path instead.
  for (const schema of Object.values(schemas)) {
    delete (schema as { $schema?: string }).$schema;
    delete (schema as { $id?: string }).$id;
  }
  const keysRequired = settings.API_KEYS.length > 0;
  // Every operation says how it is called: with an API key when API_KEYS is set, else openly.
  const security = keysRequired ? [{ ApiKey: [] }] : [];
  const unauthorized = keysRequired
    ? { 401: error('The x-api-key header is missing or holds no configured key (API_KEYS).') }
    : {};
  const uriTooLong = { 414: error(`A URL over ${MAX_URL_CHARS} characters.`) };
  const param = (name: string, schema: z.ZodType, required = false) => ({
    name,
    in: 'query',
    required,
    description: schema.description,
    schema: jsonSchema(schema),
  });
  const selection = [
    param('fields', req.fields),
    param('segmentFields', req.segmentFields),
    param('segmentTypes', req.segmentTypes),
    param('view', req.view),
  ];
  const lookupHeaders = {
    'X-Catalog-Version': header('Version of the catalog snapshot that answered.'),
    'X-Mapping-Version': header('Version of the mapping that answered.'),
    'Server-Timing': header('Phases: snapshots, mapping, store, render, total (ms).'),
  };
  const unavailable = (what: string) => error(what, retryAfter);
  const profileOperation = (head: boolean) => ({
    operationId: head ? 'headProfile' : 'getProfile',
    tags: ['profiles'],
    summary: head
      ? 'The headers GET answers, without a body.'
      : 'Who is this id? Its profile and the profiles of its linked ids.',
    security,
    parameters: [param('id', req.id, true), param('type', req.type), ...selection],
    responses: {
      200: {
        description: head
          ? 'The headers of the profiles answer.'
          : 'The profiles, requested id first.',
        headers: {
          ...lookupHeaders,
          'X-Id-Type': header('Type of the requested id.'),
          'X-Linked-Ids-Total': header('Linked ids the person has in all.', { type: 'integer' }),
          'X-Linked-Ids-Truncated': header(
            'Present (true) when LINKED_IDS_MAX cut the linked ids.',
            { type: 'string', enum: ['true'] },
          ),
        },
        ...(head ? {} : { content: either('ProfileResponse', 'FlatProfileResponse', VIEWS) }),
      },
      400: error(
        'Missing, empty, repeated, oversized or malformed id; bad %-encoding; unknown type; bad fields, segmentFields, segmentTypes or view (repeated, an empty item, an unknown value).',
      ),
      ...unauthorized,
      404: error('Nobody knows this id (code unknown_id), or no such path (not_found).'),
      405: error('Methods other than GET and HEAD.', { Allow: header('GET, HEAD') }),
      ...uriTooLong,
      503: unavailable(
        'Snapshots not loaded yet, or the profile store or the mapping (Bigtable) is unavailable.',
      ),
    },
  });
  const batchOperation = {
    operationId: 'batchGetProfiles',
    tags: ['profiles'],
    summary: `Many ids in one call: up to ${settings.BATCH_MAX_IDS} ids, all profiles read in one store call.`,
    security,
    parameters: selection,
    requestBody: { required: true, content: json('BatchGetRequest') },
    responses: {
      200: {
        description:
          `One result per requested id, in order: its profiles (as GET answers them) or its own error (BatchGetError). ` +
          `Each id's linked ids are capped by LINKED_IDS_MAX, and lower when needed to keep the call within ` +
          `${settings.BATCH_MAX_PROFILES} profile reads (BATCH_MAX_PROFILES; an id without a type counts once per type it may be). ` +
          `From the first result that would take the answer's profiles past ${settings.BATCH_MAX_ANSWER_BYTES} bytes ` +
          `(BATCH_MAX_ANSWER_BYTES) on, results are 413 answer_too_large: ask for those ids in another call.`,
        headers: lookupHeaders,
        content: either(
          'BatchGetResponse',
          'FlatBatchGetResponse',
          'The view the request asks for (view) selects the schema: BatchGetResponse for the full view, FlatBatchGetResponse for view=flat.',
        ),
      },
      400: error(
        `The body is not JSON (invalid_json), not {"ids": [...]} (invalid_body), has no ids (no_ids) or more than ${settings.BATCH_MAX_IDS} (too_many_ids); ids that may need more than ${settings.BATCH_MAX_PROFILES} reads (too_many_profiles); bad fields, segmentFields, segmentTypes or view.`,
      ),
      ...unauthorized,
      405: error('Methods other than POST.', { Allow: header('POST') }),
      408: error(`The body did not arrive within the request budget (REQUEST_BUDGET_MS).`),
      413: error(`A body over ${MAX_BODY_BYTES / 1024} KiB after decompression.`),
      ...uriTooLong,
      415: error('A body that is not application/json, or in an unsupported encoding.'),
      503: unavailable(
        'Snapshots not loaded yet, or the profile store or the mapping is unavailable: the whole call, never a partial answer.',
      ),
    },
  };
  const healthOperation = (head: boolean) => ({
    operationId: head ? 'headHealth' : 'getHealth',
    tags: ['operations'],
    summary: head
      ? "Readiness as GET /health's status code, without a body."
      : 'Readiness: its status for every caller; snapshot versions and ages, the stores and memory for operators (OPERATOR_API_KEYS).',
    security: keysRequired ? [{ ApiKey: [] }] : [],
    responses: {
      200: { description: 'ok or degraded', ...(head ? {} : { content: json('Health') }) },
      ...unauthorized,
      ...uriTooLong,
      503: {
        description: 'unavailable',
        headers: retryAfter,
        ...(head ? {} : { content: json('Health') }),
      },
    },
  });
  const documentOperation = (head: boolean) => ({
    operationId: head ? 'headOpenApi' : 'getOpenApi',
    tags: ['operations'],
    summary: head ? 'The headers of this document.' : 'This document (OpenAPI 3.1).',
    security,
    responses: {
      200: {
        description: 'OpenAPI 3.1',
        ...(head ? {} : { content: { 'application/json': { schema: { type: 'object' } } } }),
      },
      ...unauthorized,
      ...uriTooLong,
    },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Profile API',
      version: '1',
      description:
        'User profile lookup: an id, its linked ids and their segments, as JSON keyed by user id.',
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    servers: [{ url: '/', description: 'This function (or its load balancer).' }],
    tags: [
      { name: 'profiles', description: 'Profile lookups.' },
      { name: 'operations', description: 'Readiness and this document.' },
    ],
    paths: {
      '/': { get: profileOperation(false), head: profileOperation(true) },
      '/profiles:batchGet': { post: batchOperation },
      '/health': { get: healthOperation(false), head: healthOperation(true) },
      '/openapi.json': { get: documentOperation(false), head: documentOperation(true) },
    },
    components: {
      schemas: {
        ...schemas,
        BatchGetRequest: { ...jsonSchema(req.batchBody), description: 'The ids to answer.' },
      },
      // Declared where API_KEYS applies: no scheme when the function takes no key.
      securitySchemes: keysRequired ? { ApiKey: apiKey } : {},
    },
  };
}

const apiKey = {
  type: 'apiKey',
  in: 'header',
  name: 'x-api-key',
  description:
    'One of the keys in API_KEYS (or OPERATOR_API_KEYS): required on every path when API_KEYS is set.',
};
