import { describe, expect, it } from 'vitest';
import {
  argv,
  DEMO_SETTINGS,
  flag,
  having,
  planned,
  sandbox,
} from '../helpers/stub-cli/deploy-sandbox.js';

// What a real Google Cloud project would refuse or break on a first deployment (issue 23,
// items 1-9), against the recording gcloud stub: first run, re-run, refusals before any call.
const SETTINGS = { ...DEMO_SETTINGS, AEROSPIKE_HOSTS: '10.0.0.5:3000' };
const BUILD_SA = 'profile-api-build@demo-proj.iam.gserviceaccount.com';

const deployed = sandbox(SETTINGS).then((box) => ({ box, first: box.run(), second: box.run() }));

/** A dry run's planned commands (nothing runs), or its refusal. */
const plan = async (env: Record<string, string | undefined>) => {
  const box = await sandbox(SETTINGS);
  const result = box.attempt([], { DRY_RUN: '1', ...env });
  return { ...result, lines: planned(result.stdout) };
};

describe('builds (item 1)', () => {
  it('creates a build service account with the roles a build needs, and builds every function as it', async () => {
    const { first } = await deployed;
    expect(
      having(first.commands, 'gcloud iam service-accounts create profile-api-build '),
    ).toHaveLength(1);
    const grants = having(first.commands, 'projects add-iam-policy-binding', BUILD_SA);
    expect(grants.map((g) => flag(g, '--role'))).toEqual([
      'roles/logging.logWriter',
      'roles/artifactregistry.writer',
      'roles/storage.objectViewer',
    ]);
    const deploys = having(first.commands, 'gcloud functions deploy ');
    expect(deploys).toHaveLength(3);
    for (const deploy of deploys) {
      expect(flag(deploy, '--build-service-account')).toBe(
        `projects/demo-proj/serviceAccounts/${BUILD_SA}`,
      );
    }
    // The account exists before the first build uses it.
    expect(first.commands.indexOf(grants[2] ?? '')).toBeLessThan(
      first.commands.indexOf(deploys[0] ?? ''),
    );
  });

  it('creates it once: a re-run only re-applies the grants', async () => {
    const { second } = await deployed;
    expect(having(second.commands, 'service-accounts create')).toEqual([]);
    expect(having(second.commands, 'projects add-iam-policy-binding', BUILD_SA)).toHaveLength(3);
  });

  it('uses an account given in BUILD_SERVICE_ACCOUNT as it is', async () => {
    const { lines } = await plan({ BUILD_SERVICE_ACCOUNT: 'builder@other.iam.gserviceaccount.com' });
    expect(having(lines, 'profile-api-build')).toEqual([]);
    for (const deploy of having(lines, 'gcloud functions deploy ')) {
      expect(argv(deploy)).toContain(
        '--build-service-account=projects/demo-proj/serviceAccounts/builder@other.iam.gserviceaccount.com',
      );
    }
  });
});
