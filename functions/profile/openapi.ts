import { z } from 'zod';
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

/** The OpenAPI 3.1 document of the profile function, its schemas generated from the zod schemas. */
export function openApiDocument(
  idTypes: IdTypeRegistry,
  maxIdLength: number,
): Record<string, unknown> {
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
    ],
    responses: {
      200: {
        description: 'The profiles, requested id first. HEAD answers the same without a body.',
        headers: {
          'X-Catalog-Version': header('Version of the catalog snapshot that answered.'),
          'X-Mapping-Version': header('Version of the mapping snapshot that answered.'),
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
        'Missing, empty, repeated, oversized or malformed id; bad %-encoding; unknown type.',
      ),
      401: error('An API key is required and missing or wrong (when API keys are configured).'),
      404: error('Nobody knows this id (code unknown_id), or no such path (not_found).'),
      413: error('A request body over 16 KiB (none is needed).'),
      415: error('A request body in an unsupported encoding or charset.'),
      405: error('Methods other than GET and HEAD.', { Allow: header('GET, HEAD') }),
      503: error('Snapshots not loaded yet, or the profile store is unavailable.', retryAfter),
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
