import { z } from 'zod';
import type { JsonValue } from '../json-value.js';

const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(),
    z.boolean(),
    z.null(),
    z.array(jsonValue),
    z.record(z.string(), jsonValue),
  ]),
);

/**
 * One segment's metadata as the catalog holds it: an id (numbers become strings), a name, and
 * usually a type and a size; any other JSON fields the catalog carries are kept as they are.
 */
export const segmentSchema = z
  .object({
    id: z
      .union([z.string().min(1).max(256), z.number().int().nonnegative()])
      .transform((id) => String(id)),
    name: z.string().max(1024),
    type: z.string().max(256).optional(),
    size: z.number().nonnegative().optional(),
  })
  .catchall(jsonValue);

/** A validated segment; `id` is always a string. */
export type Segment = z.output<typeof segmentSchema>;
