import type { Catalog } from '../../shared/catalog/catalog.js';
import { HttpError } from '../../shared/errors.js';
import type { QueryParameters } from '../../shared/http/query-string.js';
import type { ProfileDeps } from './profile-deps.js';
import type { ProfileFields, RenderOptions } from './render-profiles.js';
import { PROFILE_FIELDS, type RequestSchemas } from './request-schemas.js';

/** What the request asked an answer to carry, before the catalog is at hand. */
export interface AnswerSelection {
  readonly fields: ProfileFields;
  /** Catalog fields per segment (undefined: all); checked against the catalog when answering. */
  readonly segmentFields: readonly string[] | undefined;
  readonly segmentTypes: ReadonlySet<string> | undefined;
  readonly flat: boolean;
}

const ALL_FIELDS: ProfileFields = { attributes: true, segments: true, unknownSegmentIds: true };
const FLAT_DEFAULT: ProfileFields = { attributes: true, segments: true, unknownSegmentIds: false };

/** The default: every field of every segment, the full view. */
const DEFAULT_SELECTION: AnswerSelection = {
  fields: ALL_FIELDS,
  segmentFields: undefined,
  segmentTypes: undefined,
  flat: false,
};

/**
 * Reads `fields`, `segmentFields`, `segmentTypes` and `view` (each comma-separated, given once),
 * checked with their request schemas. A repeated parameter, an empty list item or an unknown
 * `fields` or `view` value is a 400 here; unknown segment fields once the catalog is known
 * (renderOptions).
 */
export function parseAnswerSelection(
  params: QueryParameters,
  schemas: RequestSchemas,
): AnswerSelection {
  const fieldsParam = once(params, 'fields');
  const segmentFields = once(params, 'segmentFields');
  const segmentTypes = once(params, 'segmentTypes');
  const view = once(params, 'view');
  if (
    fieldsParam === undefined &&
    segmentFields === undefined &&
    segmentTypes === undefined &&
    view === undefined
  ) {
    return DEFAULT_SELECTION;
  }
  if (view !== undefined && !schemas.view.safeParse(view).success) {
    throw badRequest('invalid_view', 'view must be full or flat');
  }
  const flat = view === 'flat';
  let fields = flat ? FLAT_DEFAULT : ALL_FIELDS;
  if (fieldsParam !== undefined) {
    const names = list(fieldsParam);
    if (!schemas.fields.safeParse(fieldsParam).success) {
      const unknown = names.filter((n) => !(PROFILE_FIELDS as readonly string[]).includes(n));
      throw badRequest(
        'invalid_fields',
        unknown.some((n) => n !== '')
          ? `fields takes ${PROFILE_FIELDS.join(', ')}; not ${unknown.filter((n) => n !== '').join(', ')}`
          : 'fields has an empty item',
      );
    }
    fields = {
      attributes: names.includes('attributes'),
      segments: names.includes('segments'),
      unknownSegmentIds: names.includes('unknownSegmentIds'),
    };
  }
  if (segmentFields !== undefined && !schemas.segmentFields.safeParse(segmentFields).success) {
    throw badRequest('invalid_segment_fields', 'segmentFields has an empty item');
  }
  if (segmentTypes !== undefined && !schemas.segmentTypes.safeParse(segmentTypes).success) {
    throw badRequest('invalid_segment_types', 'segmentTypes has an empty item');
  }
  return {
    fields,
    segmentFields: segmentFields === undefined ? undefined : list(segmentFields),
    segmentTypes: segmentTypes === undefined ? undefined : new Set(list(segmentTypes)),
    flat,
  };
}

/** The render options of a selection against the loaded catalog (400 for unknown segment fields). */
export function renderOptions(
  selection: AnswerSelection,
  catalog: Catalog,
  deps: Pick<ProfileDeps, 'config' | 'now'>,
): RenderOptions {
  if (selection.segmentFields !== undefined) {
    const unknown = selection.segmentFields.filter((f) => !catalog.hasField(f));
    if (unknown.length > 0) {
      throw badRequest(
        'invalid_segment_fields',
        `segmentFields takes ${catalog.fieldNames.join(', ')}; not ${unknown.join(', ')}`,
      );
    }
  }
  const { fields, flat } = selection;
  return {
    catalog: catalog.view(selection.segmentFields),
    segmentsBin: deps.config.SEGMENTS_BIN,
    nowSecs: Math.floor(deps.now() / 1000),
    fields,
    segmentTypes: selection.segmentTypes,
    flat,
    flatReserved: flat ? flatReserved(fields) : undefined,
  };
}

/** The member names the flat view writes beside the attributes (ours win a name clash). */
function flatReserved(fields: ProfileFields): ReadonlySet<string> {
  const reserved = new Set<string>();
  if (fields.segments) reserved.add('segments');
  if (fields.unknownSegmentIds) reserved.add('unknownSegmentIds');
  return reserved;
}

function once(params: QueryParameters, name: string): string | undefined {
  const values = params.get(name);
  if (!values) return undefined;
  if (values.length > 1) throw badRequest('repeated_parameter', `give the ${name} parameter once`);
  return values[0];
}

function list(value: string): string[] {
  return value.split(',').map((v) => v.trim());
}

function badRequest(code: string, message: string): HttpError {
  return new HttpError(400, code, message);
}
