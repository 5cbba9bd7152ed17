import { type JsonValue, toJsonValue } from '../json-value.js';

/**
 * Converts a value as the MongoDB driver returns it into plain JSON: ObjectId -> hex,
 * Long -> number when exact else string, Decimal128 -> string, Binary -> base64, and the
 * generic rules of toJsonValue for the rest. BSON types are recognised by `_bsontype`, so this
 * module needs no driver import.
 */
export function bsonToJson(value: unknown): JsonValue {
  return toJsonValue(value, bsonScalar);
}

function bsonScalar(value: object): JsonValue | undefined {
  const bsonType = (value as { _bsontype?: unknown })._bsontype;
  if (typeof bsonType !== 'string') return undefined;
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
      return toJsonValue(v.value);
    case 'Binary':
      return v.buffer ? Buffer.from(v.buffer).toString('base64') : null;
    default:
      // Decimal128, Timestamp, UUID, BSONRegExp...: their string form is what a reader expects.
      return v.toString();
  }
}
