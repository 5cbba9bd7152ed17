import { HttpError, ProfileApiError } from '../../shared/errors.js';
import type { HttpResult } from '../../shared/http/http-event.js';
import type { MappingAnswer } from '../../shared/mapping/mapping-store.js';
import type { ProfileBins, ProfileKey } from '../../shared/profiles/profile-store.js';
import type { ProfileDeps } from './profile-deps.js';

/** Phase durations of one request, in milliseconds, for Server-Timing and the request log. */
export type Phases = Record<string, number>;

/** Continues with the mapping's answer, or answers 503 when the mapping store cannot. */
export function afterMapping(
  deps: ProfileDeps,
  found: MappingAnswer | Promise<MappingAnswer>,
  then: (mapping: MappingAnswer) => HttpResult | Promise<HttpResult>,
): HttpResult | Promise<HttpResult> {
  if (!(found instanceof Promise)) return then(found);
  return found.then(then, (err: unknown) => {
    if (!(err instanceof ProfileApiError)) throw err;
    deps.log.warn('mapping store unavailable', { err });
    throw unavailable(
      'mapping_unavailable',
      'the identity mapping is unavailable; retry later',
      deps,
    );
  });
}

/**
 * ONE profile-store call for all keys, then `then` with the records: at once when the store has
 * them at hand, else after the one promise; 503 when the store cannot answer in time.
 */
export function withProfiles(
  deps: ProfileDeps,
  keys: readonly ProfileKey[],
  budgetMs: number,
  then: (bins: readonly (ProfileBins | undefined)[]) => HttpResult,
): HttpResult | Promise<HttpResult> {
  const onError = (err: unknown): never => {
    if (!(err instanceof ProfileApiError)) throw err;
    deps.log.warn('profile store unavailable', { err });
    throw unavailable('store_unavailable', 'the profile store is unavailable; retry later', deps);
  };
  let read: ReturnType<ProfileDeps['store']['getMany']>;
  try {
    read = deps.store.getMany(keys, { timeoutMs: budgetMs });
  } catch (err) {
    return onError(err);
  }
  return read instanceof Promise ? read.then(then, onError) : then(read);
}

export function unavailable(code: string, message: string, deps: ProfileDeps): HttpError {
  return new HttpError(503, code, message, {
    headers: { 'retry-after': String(deps.config.RETRY_AFTER_SECS) },
  });
}

/** `server-timing` from the phases measured so far (`total` is added at the end). */
export function serverTiming(phases: Phases): string {
  let timing = '';
  for (const name in phases) {
    timing += `${timing ? ', ' : ''}${name};dur=${(phases[name] as number).toFixed(2)}`;
  }
  return timing;
}
