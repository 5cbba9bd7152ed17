import type { JsonValue } from './segment.js';

/**
 * Converts a value as the MongoDB driver returns it into plain JSON: ObjectId -> hex,
 * Date -> ISO string, Long -> number when exact else string, Decimal128 -> string,
 * Binary -> base64. Recognised by `_bsontype` so this module needs no driver import.
 */
export function bsonToJson(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    case 'object':
      break;
    default:
      return String(value);
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return value.map(bsonToJson);
  const bsonType = (value as { _bsontype?: unknown })._bsontype;
  if (typeof bsonType === 'string') return bsonScalar(bsonType, value);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, bsonToJson(v)]));
}

function bsonScalar(bsonType: string, value: object): JsonValue {
  const v = value as {
    toHexString?: () => string;
    toNumber?: () => number;
    toString: (radix?: number) => string;
    buffer?: Uint8Array;
    value?: unknown;
  };
  switch (bsonType) {
    case 'ObjectId':
    case 'ObjectID':
      return v.toHexString ? v.toHexString() : v.toString();
    case 'Long': {
      const n = v.toNumber ? v.toNumber() : Number(v.toString());
      return Number.isSafeInteger(n) ? n : v.toString();
    }
    case 'Int32':
    case 'Double':
      return bsonToJson(v.value);
    case 'Binary':
      return v.buffer ? Buffer.from(v.buffer).toString('base64') : null;
    default:
      // Decimal128, Timestamp, UUID, BSONRegExp...: their string form is what a reader expects.
      return v.toString();
  }
}
