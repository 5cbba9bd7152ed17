import { z } from 'zod';
import type { IdTypeRegistry } from '../../shared/id-types.js';

/** The answer parts `fields` chooses among (`type` and `found` always come). */
export const PROFILE_FIELDS = ['attributes', 'segments', 'unknownSegmentIds'] as const;

/** The limits of a request the schemas carry (the profile function's settings). */
export interface RequestLimits {
  readonly MAX_ID_LENGTH: number;
  readonly BATCH_MAX_IDS: number;
}

/**
 * The zod schemas every request is checked with, and that the OpenAPI document shows (one
 * definition: the two cannot drift). Error codes are ours, read from the issues a schema finds
 * (see profile-request.ts, answer-options.ts and batch-get.ts).
 */
export interface RequestSchemas {
  /** A user id: printable ASCII without spaces, at most MAX_ID_LENGTH characters. */
  readonly id: z.ZodString;
  /** An id type name from the registry. */
  readonly type: z.ZodEnum;
  readonly fields: z.ZodString;
  readonly segmentFields: z.ZodString;
  readonly segmentTypes: z.ZodString;
  readonly view: z.ZodEnum;
  /** One item of a batch. */
  readonly batchItem: z.ZodObject;
  /** A batch body: its ids, at most BATCH_MAX_IDS (each item is checked on its own). */
  readonly batchBody: z.ZodObject;
}

const fieldName = `(${PROFILE_FIELDS.join('|')})`;
/** A comma-separated list of names, none empty once trimmed. */
const NAME_LIST = /^[^,]*[^,\s][^,]*(,[^,]*[^,\s][^,]*)*$/;

const cache = new WeakMap<IdTypeRegistry, Map<string, RequestSchemas>>();

/** The request schemas for a registry and limits (built once for each). */
export function requestSchemas(registry: IdTypeRegistry, limits: RequestLimits): RequestSchemas {
  let byLimits = cache.get(registry);
  if (!byLimits) {
    byLimits = new Map();
    cache.set(registry, byLimits);
  }
  const key = `${limits.MAX_ID_LENGTH}/${limits.BATCH_MAX_IDS}`;
  let schemas = byLimits.get(key);
  if (!schemas) {
    schemas = build(registry, limits);
    byLimits.set(key, schemas);
  }
  return schemas;
}

function build(registry: IdTypeRegistry, limits: RequestLimits): RequestSchemas {
  const id = z
    .string()
    .min(1)
    .max(limits.MAX_ID_LENGTH)
    .regex(/^[\x21-\x7e]+$/)
    .describe(
      `A user id: printable ASCII without spaces, at most ${limits.MAX_ID_LENGTH} characters (MAX_ID_LENGTH).`,
    );
  const names = registry.all.map((t) => t.name);
  const type = z
    .enum(names as [string, ...string[]])
    .describe("The id's type (the id type registry); inferred from the id's syntax when absent.");
  const batchItem = z
    .object({ id, type: type.optional() })
    .strict()
    .describe('One id to answer, with its type when the caller knows it.');
  return {
    id,
    type,
    fields: z
      .string()
      .regex(new RegExp(`^\\s*${fieldName}\\s*(,\\s*${fieldName}\\s*)*$`))
      .describe(
        `Comma-separated subset of ${PROFILE_FIELDS.join(', ')}: what each profile carries (type and found always come).`,
      ),
    segmentFields: z
      .string()
      .regex(NAME_LIST)
      .describe(
        'Comma-separated catalog fields each segment carries (e.g. id,name,type); a name no segment has: 400.',
      ),
    segmentTypes: z
      .string()
      .regex(NAME_LIST)
      .describe('Comma-separated segment types to keep (e.g. demographic,interest).'),
    view: z
      .enum(['full', 'flat'])
      .describe(
        "full (default), or flat: the original service's format, attributes at the top level of each id's object.",
      ),
    batchItem,
    batchBody: z
      .object({
        ids: z
          .array(batchItem)
          .min(1)
          .max(limits.BATCH_MAX_IDS)
          .describe(
            `Up to ${limits.BATCH_MAX_IDS} ids (BATCH_MAX_IDS), answered in this order; each item is checked on its own (a bad one gets its own error result).`,
          ),
      })
      .strict(),
  };
}
