import { BackendChecks } from '../../functions/profile/backend-checks.js';
import { checkBackends } from '../../functions/profile/health.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';

/** Profile dependencies with the backend checks the runtime wires (over the given stores). */
export function withBackendChecks(
  deps: Omit<ProfileDeps, 'backends'> & { readonly backends?: BackendChecks },
): ProfileDeps {
  return {
    ...deps,
    backends:
      deps.backends ??
      new BackendChecks(
        () => checkBackends(deps),
        deps.now,
        () => deps.mapping.version(),
      ),
  };
}
