import { HttpError } from '../../shared/errors.js';
import { parseQueryString } from '../../shared/http/query-string.js';
import type { IdTypeRegistry, TypedId } from '../../shared/id-types.js';

/** A validated profile request: the id as each type it may be, in registry order. */
export interface ProfileRequest {
  /** One entry when `type` was given; otherwise every type whose syntax the id fits. */
  readonly candidates: readonly TypedId[];
  readonly typeGiven: boolean;
}

// Printable ASCII without space: ids are tokens, and anything else is a client mistake.
const ID_CHARACTERS = /^[\x21-\x7e]+$/;

/**
 * Reads `id` (and optional `type`) from a raw query string. Throws HttpError: 400 for a missing,
 * empty, oversized, repeated or malformed id, a bad encoding or an unknown type; 404 for an id
 * that fits no configured id type (nobody can know it). Other parameters are ignored.
 */
export function parseProfileRequest(
  rawQuery: string,
  registry: IdTypeRegistry,
  maxIdLength: number,
): ProfileRequest {
  const params = parseQueryString(rawQuery);
  if (!params) throw badRequest('invalid_query', 'the query string has a malformed %-encoding');

  const ids = params.get('id') ?? [];
  if (ids.length === 0) throw badRequest('missing_id', 'the id parameter is required');
  if (ids.length > 1) throw badRequest('repeated_parameter', 'give the id parameter once');
  const id = ids[0] as string;
  if (id === '') throw badRequest('empty_id', 'the id parameter is empty');
  if (id.length > maxIdLength) {
    throw badRequest('id_too_long', `the id is longer than ${maxIdLength} characters`);
  }
  if (!ID_CHARACTERS.test(id)) {
    throw badRequest('malformed_id', 'the id may hold only printable ASCII characters, no spaces');
  }

  const types = params.get('type') ?? [];
  if (types.length > 1) throw badRequest('repeated_parameter', 'give the type parameter once');
  if (types.length === 1) {
    const type = registry.byName(types[0] as string);
    if (!type) {
      const names = registry.all.map((t) => t.name).join(', ');
      throw badRequest('unknown_type', `type must be one of: ${names}`);
    }
    const typed = registry.asType(id, type);
    if (!typed) throw badRequest('malformed_id', `the id is not a valid ${type.name}`);
    return { candidates: [typed], typeGiven: true };
  }

  const candidates = registry.candidates(id);
  if (candidates.length === 0) {
    throw new HttpError(404, 'unknown_id', 'no profile is known for this id');
  }
  return { candidates, typeGiven: false };
}

function badRequest(code: string, message: string): HttpError {
  return new HttpError(400, code, message);
}
