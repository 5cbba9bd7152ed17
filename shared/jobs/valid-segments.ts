import { z } from 'zod';
import type { CatalogDocument } from '../catalog/catalog-source.js';
import { type Segment, segmentSchema } from '../catalog/segment.js';
import type { Logger } from '../logger.js';
import { countInto } from '../skip-counts.js';

/** How many invalid records a job logs one by one before it only counts them. */
export const MAX_LOGGED_REJECTS = 20;

/**
 * Validates catalog documents with zod: a bad document (no id, no name, wrong types) or a
 * repeated id is counted, logged (the first few) and skipped, never a crash.
 */
export async function* validSegments(
  documents: AsyncIterable<CatalogDocument>,
  counters: { readonly skippedByReason: Map<string, number> },
  log: Logger,
): AsyncIterable<Segment> {
  const seen = new Set<string>();
  let skipped = 0;
  for await (const doc of documents) {
    const parsed = segmentSchema.safeParse(doc);
    let problem: string | undefined;
    if (!parsed.success) problem = z.prettifyError(parsed.error).replaceAll('\n', ' ');
    else if (seen.has(parsed.data.id)) problem = 'duplicate segment id';
    if (problem !== undefined || !parsed.success) {
      const reason = parsed.success ? 'duplicate_id' : 'invalid_document';
      countInto(counters.skippedByReason, reason);
      if (++skipped <= MAX_LOGGED_REJECTS) {
        log.warn('skipping invalid catalog document', { id: describeId(doc.id), problem });
      }
      continue;
    }
    seen.add(parsed.data.id);
    yield parsed.data;
  }
}

function describeId(id: unknown): string {
  return typeof id === 'string' || typeof id === 'number' ? String(id).slice(0, 64) : typeof id;
}
