import type { IdType, IdTypeRegistry, TypedId } from '../../shared/id-types.js';
import type { MappingIndex } from '../../shared/mapping/mapping-index.js';
import type { ProfileBins, ProfileKey } from '../../shared/profiles/profile-store.js';
import type { ProfileRequest } from './profile-request.js';

/** One id of the answer with its type and its record (undefined: no profile stored). */
export interface ProfileEntry {
  readonly id: string;
  readonly type: IdType;
  readonly bins: ProfileBins | undefined;
}

/**
 * Which profiles a request needs, all read in ONE store call: the requested id and its linked
 * ids when the mapping knows it, or else the id in each type set it may belong to.
 */
export interface LookupPlan {
  readonly wanted: readonly TypedId[];
  readonly keys: readonly ProfileKey[];
  /** Whether the mapping knew the id (then `wanted[0]` is it, the rest its linked ids). */
  readonly mapped: boolean;
  /** Linked ids the person has in all; more than `wanted.length - 1` when the cap cut them. */
  readonly linkedTotal: number;
}

/** Resolves a request against the in-memory mapping; no I/O. */
export function planLookup(
  request: ProfileRequest,
  mapping: MappingIndex,
  registry: IdTypeRegistry,
  maxLinked: number,
): LookupPlan {
  for (const candidate of request.candidates) {
    const hit = mapping.lookup(candidate.id, candidate.type.code, maxLinked);
    if (!hit) continue;
    const wanted: TypedId[] = [candidate];
    for (const l of hit.linked) {
      const type = registry.byCode(l.typeCode);
      if (type) wanted.push({ id: l.id, type });
    }
    return { wanted, keys: keysOf(wanted), mapped: true, linkedTotal: hit.linkedTotal };
  }
  return {
    wanted: request.candidates,
    keys: keysOf(request.candidates),
    mapped: false,
    linkedTotal: 0,
  };
}

/**
 * The entries of the answer, requested id first; undefined when neither the mapping nor the
 * store knows the id. Unmapped: the first type (registry order) whose set holds it answers.
 */
export function entriesOf(
  plan: LookupPlan,
  bins: readonly (ProfileBins | undefined)[],
): ProfileEntry[] | undefined {
  if (plan.mapped) return plan.wanted.map((k, i) => ({ id: k.id, type: k.type, bins: bins[i] }));
  const found = bins.findIndex((b) => b !== undefined);
  if (found < 0) return undefined;
  const hit = plan.wanted[found] as TypedId;
  return [{ id: hit.id, type: hit.type, bins: bins[found] }];
}

function keysOf(ids: readonly TypedId[]): ProfileKey[] {
  return ids.map((k) => ({ set: k.type.code, id: k.id, keyType: k.type.keyType }));
}
