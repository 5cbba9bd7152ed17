import { z } from 'zod';
import { MAX_BODY_BYTES } from '../../shared/http/harden-framework.js';
import type { IdTypeRegistry } from '../../shared/id-types.js';
import { apiSchemas } from './api-schemas.js';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
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

/** The parameters that shape an answer, on GET and on the batch endpoint alike. */
const selectionParameters = [
  {
    name: 'fields',
    in: 'query',
    required: false,
    description:
      'Comma-separated subset of attributes, segments, unknownSegmentIds: what each profile carries (type and found always come).',
    schema: {
      type: 'string',
      pattern:
        '^(attributes|segments|unknownSegmentIds)(,(attributes|segments|unknownSegmentIds))*$',
    },
  },
  {
    name: 'segmentFields',
    in: 'query',
    required: false,
    description:
      'Comma-separated catalog fields each segment carries (e.g. id,name,type); unknown names: 400.',
    schema: { type: 'string' },
  },
  {
    name: 'segmentTypes',
    in: 'query',
    required: false,
    description: 'Comma-separated segment types to keep (e.g. demographic,interest).',
    schema: { type: 'string' },
  },
  {
    name: 'view',
    in: 'query',
    required: false,
    description:
      "full (default), or flat: the original service's format, attributes at the top level of each id's object.",
    schema: { type: 'string', enum: ['full', 'flat'] },
  },
];

/** The OpenAPI 3.1 document of the profile function, its schemas generated from the zod schemas. */
export function openApiDocument(
  idTypes: IdTypeRegistry,
  limits: {
    readonly MAX_ID_LENGTH: number;
    readonly BATCH_MAX_IDS: number;
    readonly BATCH_MAX_PROFILES: number;
    readonly BATCH_MAX_ANSWER_BYTES: number;
  },
): Record<string, unknown> {
  const maxIdLength = limits.MAX_ID_LENGTH;
  const { schemas } = z.toJSONSchema(apiSchemas, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  });
  // Fragment $ids are not valid JSON Schema; components are addressed by their path instead.
  for (const schema of Object.values(schemas)) {
    delete (schema as { $schema?: string }).$schema;
    delete (schema as { $id?: string }).$id;
  }
  const profileOperation = {
    summary: 'Who is this id? Its profile and the profiles of its linked ids.',
    parameters: [
      {
        name: 'id',
        in: 'query',
        required: true,
        description: 'The user id. Given once; printable ASCII without spaces.',
        schema: {
          type: 'string',
          minLength: 1,
          maxLength: maxIdLength,
          pattern: '^[\\x21-\\x7e]+$',
        },
      },
      {
        name: 'type',
        in: 'query',
        required: false,
        description: "The id's type; inferred from the id's syntax when absent.",
        schema: { type: 'string', enum: idTypes.all.map((t) => t.name) },
      },
      ...selectionParameters,
    ],
    responses: {
      200: {
        description: 'The profiles, requested id first. HEAD answers the same without a body.',
        headers: {
          'X-Catalog-Version': header('Version of the catalog snapshot that answered.'),
          'X-Mapping-Version': header('Version of the mapping that answered.'),
          'X-Id-Type': header('Type of the requested id.'),
          'X-Linked-Ids-Total': header('Linked ids the person has in all.', { type: 'integer' }),
          'X-Linked-Ids-Truncated': header(
            'Present (true) when LINKED_IDS_MAX cut the linked ids.',
            {
              type: 'string',
              enum: ['true'],
            },
          ),
          'Server-Timing': header('Phases: snapshots, mapping, store, render, total (ms).'),
        },
        content: json('ProfileResponse'),
      },
      400: error(
        'Missing, empty, repeated, oversized or malformed id; bad %-encoding; unknown type; bad fields, segmentFields, segmentTypes or view (repeated, an empty item, an unknown value).',
      ),
      401: error('An API key is required and missing or wrong (when API keys are configured).'),
      404: error('Nobody knows this id (code unknown_id), or no such path (not_found).'),
      413: error(`A request body over ${MAX_BODY_BYTES / 1024} KiB (none is needed).`),
      415: error('A request body in an unsupported encoding or charset.'),
      405: error('Methods other than GET and HEAD.', { Allow: header('GET, HEAD') }),
      503: error(
        'Snapshots not loaded yet, or the profile store or the mapping (Bigtable) is unavailable.',
        retryAfter,
      ),
    },
  };
  const batchOperation = {
    summary: `Many ids in one call: up to ${limits.BATCH_MAX_IDS} ids, all profiles read in one store call.`,
    parameters: selectionParameters,
    requestBody: { required: true, content: json('BatchGetRequest') },
    responses: {
      200: {
        description:
          `One result per requested id, in order: its profiles (as GET answers them) or its own 400/404/413 error. ` +
          `Each id's linked ids are capped by LINKED_IDS_MAX, and lower when needed to keep the call within ` +
          `${limits.BATCH_MAX_PROFILES} profile reads (BATCH_MAX_PROFILES; an id without a type counts once per type it may be). ` +
          `From the first result that would take the answer's profiles past ${limits.BATCH_MAX_ANSWER_BYTES} bytes ` +
          `(BATCH_MAX_ANSWER_BYTES) on, results are 413 answer_too_large: ask for those ids in another call.`,
        headers: {
          'X-Catalog-Version': header('Version of the catalog snapshot that answered.'),
          'X-Mapping-Version': header('Version of the mapping that answered.'),
          'Server-Timing': header('Phases: snapshots, mapping, store, render, total (ms).'),
        },
        content: json('BatchGetResponse'),
      },
      400: error(
        `The body is not JSON (invalid_json), not {"ids": [...]} (invalid_body), has no ids (no_ids) or more than ${limits.BATCH_MAX_IDS} (too_many_ids); ids that may need more than ${limits.BATCH_MAX_PROFILES} reads (too_many_profiles); bad fields, segmentFields, segmentTypes or view.`,
      ),
      401: error('An API key is required and missing or wrong (when API keys are configured).'),
      405: error('Methods other than POST.', { Allow: header('POST') }),
      413: error(`A body over ${MAX_BODY_BYTES / 1024} KiB.`),
      415: error('A body that is not application/json, or in an unsupported encoding or charset.'),
      503: error(
        'Snapshots not loaded yet, or the profile store or the mapping is unavailable: the whole call, never a partial answer.',
        retryAfter,
      ),
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Profile API',
      version: '1',
      description:
        'User profile lookup: an id, its linked ids and their segments, as JSON keyed by user id.',
    },
    paths: {
      '/': {
        get: profileOperation,
        head: { ...profileOperation, summary: 'Same as GET, without a body.' },
      },
      '/profiles:batchGet': { post: batchOperation },
      '/health': {
        get: {
          summary: 'Readiness: snapshot versions and ages, and whether the profile store answers.',
          responses: {
            200: { description: 'ok or degraded', content: json('Health') },
            503: { description: 'unavailable', content: json('Health'), headers: retryAfter },
          },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document.',
          responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
    },
    components: { schemas },
  };
}
