/** One person as the mapping source returns it: their ids with type codes, and the partition. */
export interface MappingRow {
  readonly partition: string;
  readonly ids: ReadonlyArray<{ readonly id: string; readonly type: string }>;
}

/** Where the identity mapping comes from: BigQuery in production. */
export interface MappingSource {
  /** What it reads, for logs and the manifest (no credentials). */
  readonly description: string;
  /** Every person of the latest partition, streamed; stops with an error when `signal` aborts. */
  rows(signal: AbortSignal): AsyncIterable<MappingRow>;
  close(): Promise<void>;
}
