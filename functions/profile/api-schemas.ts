import { z } from 'zod';

/** The schemas of every body the profile function answers; the OpenAPI document is built from them. */
export const apiSchemas = z.registry<{ id: string }>();

export const jsonValueSchema: z.ZodType<unknown> = z
  .lazy(() =>
    z.union([
      z.string(),
      z.number(),
      z.boolean(),
      z.null(),
      z.array(jsonValueSchema),
      z.record(z.string(), jsonValueSchema),
    ]),
  )
  .describe('Any JSON value.')
  .register(apiSchemas, { id: 'JsonValue' });

export const segmentSchema = z
  .object({
    id: z.string().optional().describe('Segment id (numbers in the catalog become strings).'),
    name: z.string().optional(),
    type: z.string().optional(),
    size: z.number().optional(),
  })
  .catchall(jsonValueSchema)
  .describe(
    'Segment metadata from the catalog: id, name, usually type and size, and whatever else the catalog holds; ' +
      'only the segmentFields asked for when the request selects some (all by default).',
  )
  .register(apiSchemas, { id: 'Segment' });

export const profileEntrySchema = z
  .object({
    type: z.string().describe('Name of the id type (from the id type registry).'),
    found: z.boolean().describe('Whether the profile store holds a record for this id.'),
    attributes: z
      .record(z.string(), jsonValueSchema)
      .optional()
      .describe(
        'Every bin of the record but the segments bin; bytes as base64, integers beyond 2^53 as strings.',
      ),
    segments: z
      .array(segmentSchema)
      .optional()
      .describe(
        'Live segments of the record, resolved, in record order (filtered by segmentTypes).',
      ),
    unknownSegmentIds: z
      .array(z.string())
      .optional()
      .describe('Segment ids of the record that the catalog does not know.'),
  })
  .strict()
  .describe(
    "One id's profile; attributes, segments and unknownSegmentIds unless `fields` leaves them out.",
  )
  .register(apiSchemas, { id: 'ProfileEntry' });

export const flatEntrySchema = z
  .object({
    segments: z.array(segmentSchema).optional(),
    unknownSegmentIds: z.array(z.string()).optional(),
  })
  .catchall(jsonValueSchema)
  .describe(
    "One id's profile in the original service's format (view=flat): the record's attributes at the top level, " +
      'and `segments` (resolved); an attribute named like one of those keys is left out (ours win).',
  )
  .register(apiSchemas, { id: 'FlatProfileEntry' });

const KEYS =
  'Keyed by user id (normalised for its type): the requested id first, then its linked ids ordered by id, then type code. ' +
  'Key order is significant and kept, also for numeric ids. No key appears twice: when a later entry has the id text ' +
  'of an earlier one (two id types of the same syntax), it is keyed `<type name>:<id>` (then `<type name>:<id>#2`, ' +
  '`#3`... should that be taken too); the requested id always keeps its bare key.';

export const profileResponseSchema = z
  .record(z.string(), profileEntrySchema)
  .describe(`The full view (default). ${KEYS}`)
  .register(apiSchemas, { id: 'ProfileResponse' });

export const flatProfileResponseSchema = z
  .record(z.string(), flatEntrySchema)
  .describe(`The flat view (view=flat). ${KEYS}`)
  .register(apiSchemas, { id: 'FlatProfileResponse' });

export const ERROR_CODES = [
  'missing_id',
  'empty_id',
  'repeated_parameter',
  'id_too_long',
  'malformed_id',
  'invalid_query',
  'unknown_type',
  'request_timeout',
  'uri_too_long',
  'expectation_failed',
  'bad_request',
  'headers_too_large',
  'unknown_id',
  'not_found',
  'method_not_allowed',
  'unauthorized',
  'request_too_large',
  'unsupported_media_type',
  'invalid_path',
  'invalid_request',
  'invalid_json',
  'invalid_body',
  'invalid_item',
  'no_ids',
  'too_many_ids',
  'too_many_profiles',
  'answer_too_large',
  'invalid_fields',
  'invalid_segment_fields',
  'invalid_segment_types',
  'invalid_view',
  'snapshots_unavailable',
  'store_unavailable',
  'mapping_unavailable',
  'aborted',
  'internal',
] as const;

export const errorResponseSchema = z
  .object({ error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }).strict() })
  .strict()
  .describe('Every error answer. Never a stack trace or a driver message.')
  .register(apiSchemas, { id: 'Error' });

/** The error codes a batch result can carry (each item is checked on its own). */
export const BATCH_ITEM_ERROR_CODES = [
  'invalid_item',
  'empty_id',
  'id_too_long',
  'malformed_id',
  'unknown_type',
  'unknown_id',
  'answer_too_large',
] as const;

const batchErrorResult = z
  .object({
    id: z.string().nullable().describe('The id as given (null when it was not a string).'),
    status: z
      .union([z.literal(400), z.literal(404), z.literal(413)])
      .describe(
        '400: this item is malformed; 404: nobody knows this id; 413: the answer reached BATCH_MAX_ANSWER_BYTES before it.',
      ),
    error: z.object({ code: z.enum(BATCH_ITEM_ERROR_CODES), message: z.string() }).strict(),
  })
  .strict()
  .describe("One requested id's own error.")
  .register(apiSchemas, { id: 'BatchGetError' });

const linkedIds = z
  .object({
    total: z.number().int().describe('Linked ids the person has in all.'),
    truncated: z.boolean().describe('Whether the cap cut them.'),
  })
  .strict();

/** A batch answer whose profiles are in `profiles` (the full or the flat view). */
function batchResponse(profiles: z.ZodType, id: string, view: string) {
  const result = z
    .union([
      z.object({ id: z.string(), status: z.literal(200), profiles, linkedIds }).strict(),
      batchErrorResult,
    ])
    .describe("One requested id's answer: its profiles, or its own error.")
    .register(apiSchemas, { id: `${id}Result` });
  return z
    .object({
      results: z.array(result).describe('One per requested id, in request order.'),
    })
    .strict()
    .describe(`A batch answer in the ${view} view.`)
    .register(apiSchemas, { id });
}

export const batchResponseSchema = batchResponse(profileResponseSchema, 'BatchGetResponse', 'full');
export const flatBatchResponseSchema = batchResponse(
  flatProfileResponseSchema,
  'FlatBatchGetResponse',
  'flat',
);

const isoTime = z.string().describe('RFC 3339 time');

export const snapshotHealthSchema = z
  .object({
    loaded: z.boolean(),
    version: z.string().nullable(),
    createdAt: isoTime.nullable(),
    ageSecs: z.number().nullable().describe('Seconds since the snapshot was published.'),
    rows: z.number().nullable(),
    source: z.record(z.string(), z.string()).nullable(),
    loadedAt: isoTime.nullable(),
    lastCheckAt: isoTime.nullable(),
    consecutiveFailures: z.number(),
    lastError: z
      .string()
      .nullable()
      .describe('Name of the last load error (details are in the logs).'),
    refused: z
      .string()
      .nullable()
      .describe(
        'Why the newest published snapshot was not loaded (over the memory budget); the last good one serves.',
      ),
    stale: z.boolean().describe('Older than MAX_STALENESS_SECS.'),
    degraded: z.boolean(),
  })
  .strict()
  .register(apiSchemas, { id: 'SnapshotHealth' });

export const bigtableHealthSchema = z
  .object({
    table: z.string().describe('projects/P/instances/I/tables/T'),
    reachable: z.boolean(),
    latencyMs: z.number().nullable(),
    lastSyncedPartition: z.string().nullable().describe('The mapping version answers carry.'),
    syncedAt: isoTime.nullable().describe('When that version became current.'),
    ids: z.number().nullable().describe('Ids in that version.'),
    expiresAt: isoTime.nullable().describe('When readers stop using that version unless re-read.'),
    ageSecs: z
      .number()
      .nullable()
      .describe('Seconds since the end of the last synced partition day.'),
    windowDays: z.number(),
    stale: z.boolean(),
    lastError: z.string().nullable(),
    syncInProgress: z
      .record(z.string(), jsonValueSchema)
      .nullable()
      .optional()
      .describe('The version being written, if any: its partition, shards done, failed shards.'),
    legacyCheckpoint: z
      .string()
      .optional()
      .describe('A table synced before versions: its old checkpoint (run the sync).'),
    firstSync: z
      .record(z.string(), jsonValueSchema)
      .nullable()
      .optional()
      .describe(
        'While nothing is synced: what the first sync found instead (newestPartition, excludedBy, what to do); else null.',
      ),
  })
  .strict()
  .describe('MAPPING_STORE=bigtable: the mapping table and the sync checkpoint.')
  .register(apiSchemas, { id: 'BigtableHealth' });

const healthStatus = z
  .enum(['ok', 'degraded', 'unavailable'])
  .describe(
    'unavailable (503): cannot answer; degraded: answers from data older than MAX_STALENESS_SECS, or a refresh failed.',
  );

export const healthDetailSchema = z
  .object({
    status: healthStatus,
    snapshots: z
      .object({ catalog: snapshotHealthSchema, mapping: snapshotHealthSchema.optional() })
      .strict()
      .describe('The mapping is here in the default snapshot mode (MAPPING_STORE=snapshot).'),
    bigtable: bigtableHealthSchema.optional(),
    store: z
      .object({
        name: z.string(),
        ok: z.boolean(),
        latencyMs: z.number(),
        error: z.string().optional(),
      })
      .catchall(jsonValueSchema)
      .describe(
        "Whether the profile store answers; the store's own view besides (Aerospike: connected, nodes and their connections, recent cluster events, event-loop delay).",
      ),
    memory: z
      .object({
        rssBytes: z.number(),
        heapUsedBytes: z.number(),
        externalBytes: z.number(),
        mappingBudgetBytes: z.number(),
      })
      .strict()
      .describe(
        'This instance: resident set, JS heap in use, memory outside the heap (snapshots), and the largest mapping it loads (MAPPING_MAX_BYTES).',
      ),
    backendsCheckedAt: isoTime.describe(
      'When the store (and Bigtable) were last asked: at most every 5 s, sooner when a request saw one change state.',
    ),
  })
  .strict()
  .describe('What an operator sees (OPERATOR_API_KEYS; without them, a run outside production).')
  .register(apiSchemas, { id: 'HealthDetail' });

export const healthResponseSchema = z
  .union([z.object({ status: healthStatus }).strict(), healthDetailSchema])
  .describe('Every caller gets the status; operators the details too.')
  .register(apiSchemas, { id: 'Health' });
