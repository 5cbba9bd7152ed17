import type { JsonValue } from '../json-value.js';

/** A raw catalog document: the id under `id`, other fields as JSON values, not yet validated. */
export type CatalogDocument = Readonly<Record<string, JsonValue>>;

/** Where the segment catalog comes from: MongoDB in production. */
export interface CatalogSource {
  /** Where it reads from, for logs and the manifest (no credentials). */
  readonly description: string;
  /** Every segment document, in id order, streamed; stops with an error when `signal` aborts. */
  documents(signal: AbortSignal): AsyncIterable<CatalogDocument>;
  close(): Promise<void>;
}
