import { z } from 'zod';

/** How an id is normalised before it is validated, looked up or stored. */
export type Normalisation = 'none' | 'lower' | 'upper';

/**
 * How the profile store keys a type's records. Aerospike digests cover the key's type: a record
 * written with the integer key 9876543210 is not found with the string key "9876543210".
 */
export type KeyType = 'string' | 'integer';

/** One kind of user id: its public name, its code (the Aerospike set), and its syntax. */
export interface IdType {
  readonly name: string;
  readonly code: string;
  readonly pattern: RegExp;
  readonly normalise: Normalisation;
  readonly keyType: KeyType;
}

/** An id together with the type it was resolved to, normalised for that type. */
export interface TypedId {
  readonly id: string;
  readonly type: IdType;
}

/** The zod schema for one id type as written in `ID_TYPES_JSON`. */
export const idTypeSpecSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _'),
  // The code names the Aerospike set, which allows at most 63 characters.
  code: z.string().regex(/^[A-Za-z0-9_-]{1,63}$/, 'letters, digits, _ and -, at most 63'),
  pattern: z.string().refine(isValidRegExp, 'not a valid regular expression'),
  normalise: z.enum(['none', 'lower', 'upper']).default('none'),
  keyType: z.enum(['string', 'integer']).default('string'),
});

/** The id types of the original system: `id_type_1`..`id_type_4`, codes `111111`..`444444`. */
export const DEFAULT_ID_TYPE_SPECS: readonly z.input<typeof idTypeSpecSchema>[] = [
  // Cookie-style id, as in the original examples: AAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEE.
  {
    name: 'id_type_1',
    code: '111111',
    pattern: '^[0-9A-F]{7}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{10}$',
    normalise: 'upper',
  },
  // Mobile advertising id (a UUID).
  {
    name: 'id_type_2',
    code: '222222',
    pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    normalise: 'lower',
  },
  // Hashed e-mail (SHA-256, hex).
  { name: 'id_type_3', code: '333333', pattern: '^[0-9a-f]{64}$', normalise: 'lower' },
  // Numeric account id.
  { name: 'id_type_4', code: '444444', pattern: '^[0-9]{6,20}$', normalise: 'none' },
];

/** The configured id types, looked up by name or code; never keyed by plain objects. */
export class IdTypeRegistry {
  private readonly byNameMap: ReadonlyMap<string, IdType>;
  private readonly byCodeMap: ReadonlyMap<string, IdType>;

  constructor(readonly all: readonly IdType[]) {
    this.byNameMap = new Map(all.map((t) => [t.name, t]));
    this.byCodeMap = new Map(all.map((t) => [t.code, t]));
  }

  byName(name: string): IdType | undefined {
    return this.byNameMap.get(name);
  }

  byCode(code: string): IdType | undefined {
    return this.byCodeMap.get(code);
  }

  /** Every type whose syntax the id fits, with the id normalised for that type, in registry order. */
  candidates(rawId: string): TypedId[] {
    const out: TypedId[] = [];
    for (const type of this.all) {
      const typed = this.asType(rawId, type);
      if (typed) out.push(typed);
    }
    return out;
  }

  /** The id normalised for `type`, or undefined when it does not fit the type. */
  asType(rawId: string, type: IdType): TypedId | undefined {
    const checked = checkId(rawId, type);
    return 'id' in checked ? { id: checked.id, type } : undefined;
  }
}

/** The outcome of checking an id against one type. */
export type IdCheck =
  | { readonly id: string }
  | { readonly problem: 'pattern' | 'not_integer' | 'integer_range' };

/**
 * Normalises `rawId` for `type` and checks it. Integer-keyed types take canonical decimal ids
 * only (leading zeros dropped: `007` and `7` are the same Aerospike key) that fit a signed
 * 64-bit integer, and the pattern is checked on that canonical form.
 */
export function checkId(rawId: string, type: IdType): IdCheck {
  let id = normaliseId(rawId, type.normalise);
  if (type.keyType === 'integer') {
    if (!DECIMAL.test(id)) return { problem: 'not_integer' };
    const value = BigInt(id);
    if (value < INT64_MIN || value > INT64_MAX) return { problem: 'integer_range' };
    id = value.toString();
  }
  return type.pattern.test(id) ? { id } : { problem: 'pattern' };
}

const DECIMAL = /^-?[0-9]{1,40}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Builds a registry from id type specs (defaults applied), refusing duplicate names or codes. */
export function createIdTypeRegistry(
  specs: readonly z.input<typeof idTypeSpecSchema>[],
): IdTypeRegistry {
  const parsed = specs.map((s) => idTypeSpecSchema.parse(s));
  const names = new Set<string>();
  const codes = new Set<string>();
  for (const spec of parsed) {
    if (names.has(spec.name)) throw new Error(`duplicate id type name "${spec.name}"`);
    if (codes.has(spec.code)) throw new Error(`duplicate id type code "${spec.code}"`);
    names.add(spec.name);
    codes.add(spec.code);
  }
  return new IdTypeRegistry(
    parsed.map((s) => ({
      name: s.name,
      code: s.code,
      pattern: new RegExp(s.pattern, 'u'),
      normalise: s.normalise,
      keyType: s.keyType,
    })),
  );
}

/** The default registry, for callers that have no configuration (demo data, tests). */
export function defaultIdTypeRegistry(): IdTypeRegistry {
  return createIdTypeRegistry(DEFAULT_ID_TYPE_SPECS);
}

function normaliseId(id: string, how: Normalisation): string {
  if (how === 'lower') return id.toLowerCase();
  if (how === 'upper') return id.toUpperCase();
  return id;
}

function isValidRegExp(source: string): boolean {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
}
