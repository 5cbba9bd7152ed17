import { type SegmentSlab, SegmentTable } from './segment-table.js';

/**
 * Reading list and map bins as the bytes Aerospike keeps them (msgpack), not as the client
 * decodes them: a performance trick of the Aerospike profile store, kept in this one file.
 *
 * Why: by default the C client unpacks every list and map bin into its own values and the Node
 * binding copies those into JS objects, a V8 call per element: for a segments map of a few dozen
 * entries per profile that is the largest single cost of the production path after the batch
 * read itself (bench part n). With the read policy's `deserialize: false` the client hands such a
 * bin over as a Buffer instead, and this file turns the segments bin straight into the compact
 * SegmentTable that rendering already knows (the embedded store's form).
 *
 * Exactness: the table must answer what SegmentTable.from would on the object the client would
 * have built, or nothing. So only the common shape is taken here, and anything else returns
 * undefined and is read again with the client decoding it (see AerospikeProfileStore):
 * - a map of keys that are integers or strings spelling canonical integers, 0 <= id < 2^30 (V8
 *   orders such keys by value, so the table is sorted by id; a key seen twice is left to the
 *   client), each to an integer of at most 2^53 in magnitude or a float (the expiry);
 * - a list of integers, or of strings spelling canonical integers, of at most 2^30 in magnitude
 *   (kept in list order, as the client keeps it).
 * The msgpack forms are those of the C client's unpacker (aerospike-common as_msgpack.c): one
 * leading ext element carries a list's or map's flags (a map with the preserve-order flag
 * becomes a list of pairs, so is left to the client), strings carry a particle type byte first
 * (3: a string), and the whole bin must be one value.
 *
 * The binding does not say whether a Buffer was a list or map bin or a blob bin (bytes): a Buffer
 * that cannot be a list or map (isListOrMap) is a blob; one that can is ambiguous, and read again.
 * Not told apart either: a segments bin stored as a blob whose bytes are a list or map of the shape
 * above is taken as one (the client would hand on the Buffer, which has no segments).
 */

/** The map flag the unpacker turns into a list of key-value pairs. */
const PRESERVE_ORDER = 0x08;
const STRING_PARTICLE = 3;
const SMALL_ID_LIMIT = 2 ** 30;
/** Nesting followed when skipping a map's flags value; deeper is left to the client. */
const MAX_DEPTH = 64;

/** A position in the bytes being read; `at < 0` once something was not understood. */
class Reader {
  at = 0;
  constructor(readonly buf: Buffer) {}

  fail(): undefined {
    this.at = -1;
    return undefined;
  }

  /** Bytes left, or -1 after a failure. */
  get left(): number {
    return this.at < 0 ? -1 : this.buf.length - this.at;
  }

  /** The element count of a list (`list`) or map header, or undefined when it is not one. */
  header(list: boolean): number | undefined {
    const buf = this.buf;
    const b = buf[this.at];
    if (b === undefined) return this.fail();
    if (list ? (b & 0xf0) === 0x90 : (b & 0xf0) === 0x80) {
      this.at += 1;
      return b & 0x0f;
    }
    if (b === (list ? 0xdc : 0xde) && this.at + 3 <= buf.length) {
      this.at += 3;
      return buf.readUInt16BE(this.at - 2);
    }
    if (b === (list ? 0xdd : 0xdf) && this.at + 5 <= buf.length) {
      this.at += 5;
      return buf.readUInt32BE(this.at - 4);
    }
    return this.fail();
  }

  /** Whether an ext element comes next (a list's or map's flags when it comes first). */
  atExt(): boolean {
    const b = this.buf[this.at];
    return b !== undefined && (b === 0xc7 || b === 0xc8 || b === 0xc9 || (b >= 0xd4 && b <= 0xd8));
  }

  /** Skips an ext element; returns its type (the flags), or undefined. */
  ext(): number | undefined {
    const buf = this.buf;
    const b = buf[this.at] as number;
    let size: number;
    let head: number;
    if (b >= 0xd4 && b <= 0xd8) {
      size = 1 << (b - 0xd4);
      head = 1;
    } else if (b === 0xc7 && this.at + 2 <= buf.length) {
      size = buf[this.at + 1] as number;
      head = 2;
    } else if (b === 0xc8 && this.at + 3 <= buf.length) {
      size = buf.readUInt16BE(this.at + 1);
      head = 3;
    } else if (b === 0xc9 && this.at + 5 <= buf.length) {
      size = buf.readUInt32BE(this.at + 1);
      head = 5;
    } else return this.fail();
    const type = buf[this.at + head];
    if (type === undefined || this.at + head + 1 + size > buf.length) return this.fail();
    this.at += head + 1 + size;
    return type;
  }

  /**
   * An integer as the client would give it to JS, when it is a safe integer (beyond, the
   * client gives a BigInt, which no segment table takes); undefined if it is no integer.
   */
  integer(): number | undefined {
    const buf = this.buf;
    const at = this.at;
    const b = buf[at];
    if (b === undefined) return this.fail();
    if (b <= 0x7f) {
      this.at = at + 1;
      return b;
    }
    if (b >= 0xe0) {
      this.at = at + 1;
      return b - 0x100;
    }
    const size =
      b === 0xcc || b === 0xd0
        ? 1
        : b === 0xcd || b === 0xd1
          ? 2
          : b === 0xce || b === 0xd2
            ? 4
            : b === 0xcf || b === 0xd3
              ? 8
              : 0;
    if (size === 0 || at + 1 + size > buf.length) return this.fail();
    this.at = at + 1 + size;
    switch (b) {
      case 0xcc:
        return buf[at + 1];
      case 0xd0:
        return buf.readInt8(at + 1);
      case 0xcd:
        return buf.readUInt16BE(at + 1);
      case 0xd1:
        return buf.readInt16BE(at + 1);
      case 0xce:
        return buf.readUInt32BE(at + 1);
      case 0xd2:
        return buf.readInt32BE(at + 1);
      default: {
        // 64 bits either way: the C client reads both as a signed int64.
        const n = buf.readInt32BE(at + 1) * 4_294_967_296 + buf.readUInt32BE(at + 5);
        return Number.isSafeInteger(n) ? n : this.fail();
      }
    }
  }

  /** A number (integer or float) as the client gives it, or undefined. */
  number(): number | undefined {
    const buf = this.buf;
    const b = buf[this.at];
    if (b === 0xcb && this.at + 9 <= buf.length) {
      this.at += 9;
      return buf.readDoubleBE(this.at - 8);
    }
    if (b === 0xca && this.at + 5 <= buf.length) {
      this.at += 5;
      return buf.readFloatBE(this.at - 4);
    }
    return this.integer();
  }

  /**
   * A segment id: an integer, or a string (particle type 3) spelling a canonical integer, with
   * |id| < 2^30 (`min` 0 for map keys: V8 orders only such keys by value).
   */
  id(min: number): number | undefined {
    const buf = this.buf;
    const b = buf[this.at];
    if (b === undefined) return this.fail();
    let size: number;
    let head: number;
    if ((b & 0xe0) === 0xa0) {
      size = b & 0x1f;
      head = 1;
    } else if ((b === 0xd9 || b === 0xc4) && this.at + 2 <= buf.length) {
      size = buf[this.at + 1] as number;
      head = 2;
    } else if ((b === 0xda || b === 0xc5) && this.at + 3 <= buf.length) {
      size = buf.readUInt16BE(this.at + 1);
      head = 3;
    } else if ((b === 0xdb || b === 0xc6) && this.at + 5 <= buf.length) {
      size = buf.readUInt32BE(this.at + 1);
      head = 5;
    } else {
      const n = this.integer();
      return n !== undefined && n >= min && n < SMALL_ID_LIMIT ? n : this.fail();
    }
    const start = this.at + head;
    const end = start + size;
    // A string particle of 1 to 11 characters ("-1073741823" is the longest).
    if (size < 2 || size > 12 || end > buf.length || buf[start] !== STRING_PARTICLE) {
      return this.fail();
    }
    this.at = end;
    let i = start + 1;
    const negative = buf[i] === 0x2d;
    if (negative) i++;
    // Canonical: digits only, no leading zero but "0" itself, no "-0".
    if (i === end || (buf[i] === 0x30 && (end - i > 1 || negative))) return this.fail();
    let n = 0;
    for (; i < end; i++) {
      const digit = (buf[i] as number) - 0x30;
      if (digit < 0 || digit > 9) return this.fail();
      n = n * 10 + digit;
    }
    if (negative) n = -n;
    return n >= min && n >= -SMALL_ID_LIMIT && n < SMALL_ID_LIMIT ? n : this.fail();
  }

  /** Skips one well-formed msgpack value of any kind; false if there is none. */
  skip(depth: number): boolean {
    const buf = this.buf;
    const b = buf[this.at];
    if (b === undefined || depth > MAX_DEPTH) return this.fail() ?? false;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      this.at += 1;
      return true;
    }
    if ((b & 0xe0) === 0xa0) return this.skipBytes(1, b & 0x1f);
    if ((b & 0xf0) === 0x90 || b === 0xdc || b === 0xdd) return this.skipMany(true, depth);
    if ((b & 0xf0) === 0x80 || b === 0xde || b === 0xdf) return this.skipMany(false, depth);
    if (this.atExt()) return this.ext() !== undefined;
    switch (b) {
      case 0xcc:
      case 0xd0:
        return this.skipBytes(1, 1);
      case 0xcd:
      case 0xd1:
        return this.skipBytes(1, 2);
      case 0xca:
      case 0xce:
      case 0xd2:
        return this.skipBytes(1, 4);
      case 0xcb:
      case 0xcf:
      case 0xd3:
        return this.skipBytes(1, 8);
      case 0xc4:
      case 0xd9:
        return this.at + 2 <= buf.length && this.skipBytes(2, buf[this.at + 1] as number);
      case 0xc5:
      case 0xda:
        return this.at + 3 <= buf.length && this.skipBytes(3, buf.readUInt16BE(this.at + 1));
      case 0xc6:
      case 0xdb:
        return this.at + 5 <= buf.length && this.skipBytes(5, buf.readUInt32BE(this.at + 1));
      default:
        return this.fail() ?? false;
    }
  }

  private skipBytes(head: number, size: number): boolean {
    if (this.at + head + size > this.buf.length) return this.fail() ?? false;
    this.at += head + size;
    return true;
  }

  private skipMany(list: boolean, depth: number): boolean {
    const count = this.header(list);
    if (count === undefined) return false;
    const values = list ? count : count * 2;
    // Each value is at least one byte: a header cannot make this loop longer than the bytes.
    if (values > this.left) return this.fail() ?? false;
    for (let i = 0; i < values; i++) if (!this.skip(depth + 1)) return false;
    return true;
  }
}

/**
 * Whether the bytes can be a list or map bin: they start with a list or map header (a server
 * keeps such a bin as one list or map). Nothing after the header tells a blob from a list or map
 * bin, as the client reads such a bin whatever follows: nesting deeper than a validator would
 * follow (the client decodes it), bytes after the value (ignored), bytes that are not msgpack (an
 * error). A blob that cannot is a blob for sure; one that can is ambiguous (see above).
 */
export function isListOrMap(buf: Buffer): boolean {
  const b = buf[0];
  return b !== undefined && ((b & 0xe0) === 0x80 || (b >= 0xdc && b <= 0xdf));
}

/**
 * The segment table of a segments bin read as bytes, or undefined when the bin is not of the
 * shape taken here (see above): the caller then reads the record with the client decoding it.
 */
export function segmentTableOfBytes(
  buf: Buffer,
  /** Where the table's cells are carved from: a typed array per record costs a microsecond. */
  slab: SegmentSlab,
): SegmentTable | undefined {
  const b = buf[0];
  if (b === undefined) return undefined;
  const reader = new Reader(buf);
  const isList = (b & 0xf0) === 0x90 || b === 0xdc || b === 0xdd;
  const count = reader.header(isList);
  if (count === undefined) return undefined;
  let entries = count;
  if (entries > 0 && reader.atExt()) {
    const flags = reader.ext();
    if (flags === undefined) return undefined;
    // A map's flags come as a key with a value (nil as the client packs it).
    if (!isList && (!reader.skip(0) || (flags & PRESERVE_ORDER) !== 0)) return undefined;
    entries--;
  }
  // Each element is at least one byte (a map's two).
  if (entries * (isList ? 1 : 2) > reader.left) return undefined;
  const { cells, start: first } = slab.take(entries * 2);
  const last = first + entries * 2;
  if (!isList) {
    // The form the Node client writes, read in one tight loop (0.7 us for a record of 52 entries
    // where the general loop takes 1.3 us); anything else from the start again.
    const end = commonMapEntries(buf, reader.at, entries, cells, first);
    if (end === buf.length) return SegmentTable.ofCells(cells, first, last);
    if (end === SORT) {
      return sortById(cells, first, last) ? SegmentTable.ofCells(cells, first, last) : undefined;
    }
  }
  let sorted = true;
  let previous = -1;
  for (let i = 0; i < entries; i++) {
    const id = reader.id(isList ? -SMALL_ID_LIMIT : 0);
    if (id === undefined) return undefined;
    let expiry = 0;
    if (!isList) {
      const value = reader.number();
      if (value === undefined) return undefined;
      expiry = value;
      if (id <= previous) sorted = false;
      previous = id;
    }
    cells[first + 2 * i] = id;
    cells[first + 2 * i + 1] = expiry;
  }
  if (reader.left !== 0) return undefined;
  if (!isList && !sorted && !sortById(cells, first, last)) return undefined;
  return SegmentTable.ofCells(cells, first, last);
}

/** commonMapEntries read every entry, and the whole bin, but the ids are not in order. */
const SORT = -2;

/**
 * Reads `entries` map entries from `at` into `cells` when each is the Node client's form: a key
 * of a string particle of 1 to 10 digits spelling a canonical id below 2^30, and a value of an
 * unsigned integer of at most 32 bits. Returns where the entries end (the caller checks it is the
 * end of the bin), SORT when that is the end but the ids came out of order, or -1 when an entry
 * is of another form (the caller then reads the bin the general way).
 */
function commonMapEntries(
  buf: Buffer,
  at: number,
  entries: number,
  cells: Float64Array,
  first: number,
): number {
  let p = at;
  let previous = -1;
  let sorted = true;
  const length = buf.length;
  for (let i = 0; i < entries; i++) {
    const head = buf[p] ?? 0;
    // fixstr of 2 to 11 bytes: the particle type, then the digits.
    if (head < 0xa2 || head > 0xab || buf[p + 1] !== STRING_PARTICLE) return -1;
    const end = p + (head & 0x1f) + 1;
    if (end > length) return -1;
    let q = p + 2;
    if (buf[q] === 0x30 && end - q > 1) return -1;
    let id = 0;
    for (; q < end; q++) {
      const digit = (buf[q] as number) - 0x30;
      if (digit < 0 || digit > 9) return -1;
      id = id * 10 + digit;
    }
    if (id >= SMALL_ID_LIMIT) return -1;
    const v = buf[end] ?? 0xc1;
    let expiry: number;
    if (v <= 0x7f) {
      expiry = v;
      p = end + 1;
    } else if (v === 0xce && end + 5 <= length) {
      expiry = buf.readUInt32BE(end + 1);
      p = end + 5;
    } else if (v === 0xcd && end + 3 <= length) {
      expiry = buf.readUInt16BE(end + 1);
      p = end + 3;
    } else if (v === 0xcc && end + 2 <= length) {
      expiry = buf[end + 1] as number;
      p = end + 2;
    } else return -1;
    if (id <= previous) sorted = false;
    previous = id;
    cells[first + 2 * i] = id;
    cells[first + 2 * i + 1] = expiry;
  }
  return p === length && !sorted ? SORT : p;
}

/** Sorts the `[id, expiry, ...]` pairs from `first` to `last` by id; false when an id comes twice. */
function sortById(cells: Float64Array, first: number, last: number): boolean {
  const count = (last - first) / 2;
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  order.sort((a, b) => (cells[first + 2 * a] as number) - (cells[first + 2 * b] as number));
  const copy = cells.slice(first, last);
  for (let i = 0; i < count; i++) {
    const from = order[i] as number;
    cells[first + 2 * i] = copy[2 * from] as number;
    cells[first + 2 * i + 1] = copy[2 * from + 1] as number;
    if (i > 0 && cells[first + 2 * i] === cells[first + 2 * i - 2]) return false;
  }
  return true;
}
