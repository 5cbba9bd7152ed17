import type { IdType, IdTypeRegistry, TypedId } from '../../shared/id-types.js';
import type { MappingIndex } from '../../shared/mapping/mapping-index.js';
import type { ProfileBins, ProfileStore } from '../../shared/profiles/profile-store.js';
import type { ProfileRequest } from './profile-request.js';

/** One id of the answer with its type and its record (undefined: no profile stored). */
export interface ProfileEntry {
  readonly id: string;
  readonly type: IdType;
  readonly bins: ProfileBins | undefined;
}

/** The ids that answer a request: the requested one first, then its linked ids. */
export interface ProfileLookup {
  readonly entries: readonly ProfileEntry[];
  /** Linked ids the person has in all; more than `entries.length - 1` when the cap cut them. */
  readonly linkedTotal: number;
  readonly mappingMs: number;
  readonly storeMs: number;
}

/** Limits of one lookup. */
export interface LookupOptions {
  readonly maxLinked: number;
  readonly storeTimeoutMs: number;
}

/**
 * Resolves the request against the mapping, then reads every profile it needs in ONE store
 * call: the requested id and its linked ids when the mapping knows it, or else the id in each
 * type set it may belong to. Returns undefined when neither the mapping nor the store knows it.
 */
export async function lookupProfiles(
  request: ProfileRequest,
  mapping: MappingIndex,
  store: ProfileStore,
  registry: IdTypeRegistry,
  options: LookupOptions,
): Promise<ProfileLookup | undefined> {
  const t0 = performance.now();
  let mapped: { requested: TypedId; linked: TypedId[]; linkedTotal: number } | undefined;
  for (const candidate of request.candidates) {
    const hit = mapping.lookup(candidate.id, options.maxLinked);
    if (!hit || hit.typeCode !== candidate.type.code) continue;
    const linked: TypedId[] = [];
    for (const l of hit.linked) {
      const type = registry.byCode(l.typeCode);
      if (type) linked.push({ id: l.id, type });
    }
    mapped = { requested: candidate, linked, linkedTotal: hit.linkedTotal };
    break;
  }
  const t1 = performance.now();

  const wanted = mapped ? [mapped.requested, ...mapped.linked] : request.candidates;
  const bins = await store.getMany(
    wanted.map((k) => ({ set: k.type.code, id: k.id })),
    { timeoutMs: options.storeTimeoutMs },
  );
  const t2 = performance.now();
  const timings = { mappingMs: t1 - t0, storeMs: t2 - t1 };

  if (mapped) {
    const entries = wanted.map((k, i) => ({ id: k.id, type: k.type, bins: bins[i] }));
    return { entries, linkedTotal: mapped.linkedTotal, ...timings };
  }
  // Not in the mapping: the first type (registry order) whose set holds the id answers.
  const found = bins.findIndex((b) => b !== undefined);
  if (found < 0) return undefined;
  const hit = wanted[found] as TypedId;
  return {
    entries: [{ id: hit.id, type: hit.type, bins: bins[found] }],
    linkedTotal: 0,
    ...timings,
  };
}
