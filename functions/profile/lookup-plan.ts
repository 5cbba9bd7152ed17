import type { IdType, IdTypeRegistry, TypedId } from '../../shared/id-types.js';
import type { MappingMatch } from '../../shared/mapping/mapping-store.js';
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

/** The lookup plan for a request, given what the mapping store found for its candidates. */
export function planLookup(
  request: ProfileRequest,
  match: MappingMatch | undefined,
  registry: IdTypeRegistry,
): LookupPlan {
  const candidate = match && request.candidates[match.candidate];
  if (match && candidate) {
    const wanted: TypedId[] = [candidate];
    for (const l of match.linked) {
      const type = registry.byCode(l.typeCode);
      if (type) wanted.push({ id: l.id, type });
    }
    return { wanted, keys: keysOf(wanted), mapped: true, linkedTotal: match.linkedTotal };
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
  if (plan.mapped) {
    const entries: ProfileEntry[] = [];
    for (let i = 0; i < plan.wanted.length; i++) {
      const wanted = plan.wanted[i] as TypedId;
      entries.push({ id: wanted.id, type: wanted.type, bins: bins[i] });
    }
    return entries;
  }
  const found = bins.findIndex((b) => b !== undefined);
  if (found < 0) return undefined;
  const hit = plan.wanted[found] as TypedId;
  return [{ id: hit.id, type: hit.type, bins: bins[found] }];
}

function keysOf(ids: readonly TypedId[]): ProfileKey[] {
  const keys: ProfileKey[] = [];
  for (let i = 0; i < ids.length; i++) {
    const { id, type } = ids[i] as TypedId;
    keys.push({ set: type.code, id, keyType: type.keyType });
  }
  return keys;
}

/** All plans' keys, each once, and each plan's positions among them. */
export function distinctKeys(plans: readonly LookupPlan[]): {
  keys: ProfileKey[];
  slots: number[][];
} {
  const only = plans.length === 1 ? plans[0] : undefined;
  // One plan (a GET): its keys are distinct already (one per typed id).
  if (only) return { keys: [...only.keys], slots: [only.keys.map((_, i) => i)] };
  const keys: ProfileKey[] = [];
  const index = new Map<string, number>();
  const slots = plans.map((plan) =>
    plan.keys.map((key) => {
      const name = `${key.set}\u0000${key.keyType}\u0000${key.id}`;
      let at = index.get(name);
      if (at === undefined) {
        at = keys.length;
        keys.push(key);
        index.set(name, at);
      }
      return at;
    }),
  );
  return { keys, slots };
}
