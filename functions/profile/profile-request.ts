import { HttpError } from '../../shared/errors.js';
import type { QueryParameters } from '../../shared/http/query-string.js';
import { checkId, type IdCheck, type IdTypeRegistry, type TypedId } from '../../shared/id-types.js';
import type { RequestSchemas } from './request-schemas.js';

/** A validated profile request: the id as each type it may be, in registry order. */
export interface ProfileRequest {
  /** One entry when `type` was given; otherwise every type whose syntax the id fits. */
  readonly candidates: readonly TypedId[];
  readonly typeGiven: boolean;
}

/** The 404 of an id nobody knows (HttpError has no stack: one instance serves every answer). */
export const UNKNOWN_ID = new HttpError(404, 'unknown_id', 'no profile is known for this id');

/**
 * Reads `id` (and optional `type`) from the query parameters. Throws HttpError: 400 for a
 * missing, empty, oversized, repeated or malformed id, or an unknown type; 404 for an id that
 * fits no configured id type (nobody can know it). Other parameters are read elsewhere.
 */
export function parseProfileRequest(
  params: QueryParameters,
  registry: IdTypeRegistry,
  schemas: RequestSchemas,
): ProfileRequest {
  const ids = params.get('id') ?? [];
  if (ids.length === 0) throw badRequest('missing_id', 'the id parameter is required');
  if (ids.length > 1) throw badRequest('repeated_parameter', 'give the id parameter once');
  const types = params.get('type') ?? [];
  if (types.length > 1) throw badRequest('repeated_parameter', 'give the type parameter once');
  const id = ids[0] as string;
  const checked = schemas.id.safeParse(id);
  if (!checked.success) throw idProblem(checked.error.issues[0]?.code, schemas);
  const typeName = types[0];
  if (typeName !== undefined && !schemas.type.safeParse(typeName).success) {
    throw unknownType(registry);
  }
  return resolveId(id, typeName, registry);
}

/** The error of an id its schema refused, by the first issue found (see RequestSchemas.id). */
export function idProblem(code: string | undefined, schemas: RequestSchemas): HttpError {
  if (code === 'too_small') return badRequest('empty_id', 'the id is empty');
  if (code === 'too_big') {
    return badRequest('id_too_long', `the id is longer than ${schemas.id.maxLength} characters`);
  }
  return badRequest('malformed_id', 'the id may hold only printable ASCII characters, no spaces');
}

/** 400 for a type name the registry does not hold. */
export function unknownType(registry: IdTypeRegistry): HttpError {
  const names = registry.all.map((t) => t.name).join(', ');
  return badRequest('unknown_type', `type must be one of: ${names}`);
}

/**
 * An id (its schema's checks passed) as each type it may be: the given type's own syntax, or
 * every type whose syntax it fits, in registry order (404 when none).
 */
export function resolveId(
  id: string,
  typeName: string | undefined,
  registry: IdTypeRegistry,
): ProfileRequest {
  if (typeName !== undefined) {
    const type = registry.byName(typeName);
    if (!type) throw unknownType(registry);
    const checked = checkId(id, type);
    if ('problem' in checked) {
      throw badRequest('malformed_id', `the id is not a valid ${type.name}${explain(checked)}`);
    }
    return { candidates: [{ id: checked.id, type }], typeGiven: true };
  }

  const candidates: TypedId[] = [];
  let outOfRange: string | undefined;
  for (const type of registry.all) {
    const checked = checkId(id, type);
    if ('id' in checked) candidates.push({ id: checked.id, type });
    else if (checked.problem === 'integer_range') outOfRange ??= type.name;
  }
  if (candidates.length === 0) {
    // Digits that only an integer-keyed type could take, but too large for its keys: the
    // caller's mistake, not an unknown id.
    if (outOfRange !== undefined) {
      throw badRequest('malformed_id', `the id is not a valid ${outOfRange}${INT64_RANGE}`);
    }
    throw UNKNOWN_ID;
  }
  return { candidates, typeGiven: false };
}

const INT64_RANGE = ': integer ids must fit a signed 64-bit integer';

function explain(checked: Exclude<IdCheck, { id: string }>): string {
  if (checked.problem === 'integer_range') return INT64_RANGE;
  if (checked.problem === 'not_integer') return ': this type takes decimal integer ids';
  return '';
}

function badRequest(code: string, message: string): HttpError {
  return new HttpError(400, code, message);
}
