import type { Logger } from '../logger.js';
import { isListOrMap, segmentTableOfBytes } from './raw-segments.js';
import { SegmentSlab } from './segment-table.js';

/**
 * Reading stops for good once more than 1 in GIVE_UP_RATIO records (and at least GIVE_UP_MIN)
 * had to be read again decoded: profiles of another shape than raw-segments.ts takes would
 * otherwise cost two reads each.
 */
const GIVE_UP_RATIO = 100;
const GIVE_UP_MIN = 16;

/**
 * The Aerospike store's records read with their list and map bins as bytes (see raw-segments.ts):
 * each record taken in place, and the rule that stops reading them as bytes when too many records
 * are of another shape.
 */
export class BinsAsBytes {
  /** Whether reads take lists and maps as bytes; false for good once given up. */
  on: boolean;
  private records = 0;
  private readAgain = 0;
  /** Where segment tables are carved from (a typed array per record costs a microsecond). */
  private readonly slab = new SegmentSlab();

  constructor(
    private readonly segmentsBin: string,
    on: boolean,
    private readonly log: Logger,
  ) {
    this.on = on;
  }

  /**
   * Takes a record read with lists and maps as bytes, in place: the segments bin becomes a
   * SegmentTable, a blob stays a Buffer, as the client gives it. False when a bin may be a list
   * or map that the client must decode (the binding does not say which Buffer was which).
   */
  take(bins: Record<string, unknown>): boolean {
    const names = Object.keys(bins);
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const value = bins[name];
      if (!Buffer.isBuffer(value)) continue;
      if (name === this.segmentsBin) {
        const table = segmentTableOfBytes(value, this.slab);
        if (table !== undefined) {
          bins[name] = table;
          continue;
        }
      }
      if (isListOrMap(value)) return false;
    }
    return true;
  }

  /** Counts a batch read as bytes and its records read again; gives up when too many were. */
  counted(records: number, readAgain: number): void {
    this.records += records;
    this.readAgain += readAgain;
    if (this.on && this.readAgain >= GIVE_UP_MIN && this.readAgain * GIVE_UP_RATIO > this.records) {
      this.on = false;
      this.log.info('aerospike list and map bins read decoded by the client from now on', {
        records: this.records,
        readAgain: this.readAgain,
      });
    }
  }
}
