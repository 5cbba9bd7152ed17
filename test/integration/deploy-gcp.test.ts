import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  argv,
  DEMO_SETTINGS,
  envFile,
  exist,
  flag,
  gcloudShapes,
  having,
  planned,
  printedCommands,
  realGcloud,
  sandbox,
  unparsedByGcloud,
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
    const { lines } = await plan({
      BUILD_SERVICE_ACCOUNT: 'builder@other.iam.gserviceaccount.com',
    });
    expect(having(lines, 'profile-api-build')).toEqual([]);
    for (const deploy of having(lines, 'gcloud functions deploy ')) {
      expect(argv(deploy)).toContain(
        '--build-service-account=projects/demo-proj/serviceAccounts/builder@other.iam.gserviceaccount.com',
      );
    }
  });
});

describe('reaching Aerospike (item 2)', () => {
  it("refuses the README's own private seed without VPC egress, before any call", async () => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt([], { VPC_CONNECTOR: undefined });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'AEROSPIKE_HOSTS: 10.0.0.5 is in a private range, which the profile function in europe-west1 cannot reach without VPC egress',
    );
    expect(result.commands).toEqual([]);
  });

  it.each([
    ['100.64.3.4:3000', 'is in a private range'],
    ['172.20.0.9', 'is in a private range'],
    ['aerospike.example.com:3000', 'over the public internet'],
    ['203.0.113.5:3000', 'over the public internet'],
  ])('refuses %s without VPC egress', async (seeds, message) => {
    const result = await plan({ VPC_CONNECTOR: undefined, AEROSPIKE_HOSTS: seeds });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });

  it('deploys public seeds without VPC egress only when AEROSPIKE_PUBLIC=true says so', async () => {
    const result = await plan({
      VPC_CONNECTOR: undefined,
      AEROSPIKE_HOSTS: 'aerospike.example.com:3000',
      AEROSPIKE_PUBLIC: 'true',
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('AEROSPIKE_PUBLIC=true');
    const [profile] = having(result.lines, 'gcloud functions deploy profile-api ');
    expect(profile).not.toContain('--vpc-connector');
    // A private seed is refused all the same: no internet route leads to it.
    const privateSeed = await plan({ VPC_CONNECTOR: undefined, AEROSPIKE_PUBLIC: 'true' });
    expect(privateSeed.code).toBe(1);
  });

  it('puts the function on Direct VPC egress: network and subnet on its Cloud Run service', async () => {
    const result = await plan({
      VPC_CONNECTOR: undefined,
      VPC_NETWORK: 'prod-vpc',
      VPC_SUBNET: 'prod-europe-west1',
      PROFILE_CPU_ALWAYS_ALLOCATED: 'true',
    });
    expect(result.code).toBe(0);
    const [profile] = having(result.lines, 'gcloud functions deploy profile-api ');
    expect(argv(profile ?? '')).toContain('--clear-vpc-connector');
    expect(profile).not.toContain('--egress-settings');
    const updates = having(result.lines, 'gcloud run services update profile-api ');
    // One update, one new revision: CPU and network together.
    expect(updates.map(argv)).toEqual([
      [
        'gcloud',
        'run',
        'services',
        'update',
        'profile-api',
        '--project=demo-proj',
        '--region=europe-west1',
        '--no-cpu-throttling',
        '--network=prod-vpc',
        '--subnet=prod-europe-west1',
        '--vpc-egress=private-ranges-only',
      ],
    ]);
    expect(result.lines.indexOf(updates[0] ?? '')).toBeGreaterThan(
      result.lines.indexOf(profile ?? ''),
    );
    const [apis] = having(result.lines, 'gcloud services enable');
    expect(argv(apis ?? '')).toContain('compute.googleapis.com');
    expect(argv(apis ?? '')).not.toContain('vpcaccess.googleapis.com');
    const all = await plan({
      VPC_CONNECTOR: undefined,
      VPC_NETWORK: 'prod-vpc',
      VPC_EGRESS: 'all',
    });
    expect(flag(having(all.lines, 'run services update')[0] ?? '', '--vpc-egress')).toBe(
      'all-traffic',
    );
  });

  it.each([
    [
      { VPC_NETWORK: 'prod-vpc' },
      'VPC_CONNECTOR (aerospike-connector) and VPC_NETWORK (prod-vpc) are exclusive',
    ],
    [{ VPC_CONNECTOR: undefined, VPC_SUBNET: 'sub' }, 'VPC_SUBNET needs VPC_NETWORK'],
    [{ VPC_EGRESS: 'everything' }, 'VPC_EGRESS must be private-ranges-only or all'],
  ])('refuses %j', async (env, message) => {
    const result = await plan(env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });

  it('warns when a public address would leave outside the VPC under private-ranges-only', async () => {
    const result = await plan({ AEROSPIKE_HOSTS: '10.0.0.5:3000,203.0.113.5:3000' });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('203.0.113.5 is a public address');
  });
});

describe('propagation delays (item 3)', () => {
  const NOW = { DEPLOY_RETRY_FIRST_SECS: '0' };
  const PROFILE_SA = 'profile-api-profile@demo-proj.iam.gserviceaccount.com';

  it('waits until a new service account is visible before anything names it', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.run([], {
      ...NOW,
      STUB_FLAKY: `describe ${PROFILE_SA}`,
      STUB_FLAKY_TIMES: '3',
    });
    const create = run.commands.findIndex((c) =>
      c.includes('service-accounts create profile-api-profile '),
    );
    const describes = run.commands
      .map((c, i) => (c.includes(`service-accounts describe ${PROFILE_SA}`) ? i : -1))
      .filter((i) => i >= 0);
    // One look-up before creating it, then until it shows (the stub hides it twice more).
    expect(describes).toHaveLength(4);
    expect(describes[1]).toBeGreaterThan(create);
    const firstUse = run.commands.findIndex((c) => c.includes(`serviceAccount:${PROFILE_SA}`));
    expect(firstUse).toBeGreaterThan(describes[3] ?? Infinity);
    expect(run.stderr).toContain(`waiting 0s for service account ${PROFILE_SA} to be visible`);
  });

  it('retries a grant that fails while the account propagates, and goes on', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.run([], {
      ...NOW,
      STUB_FLAKY: 'add-iam-policy-binding',
      STUB_FLAKY_TIMES: '2',
    });
    const grants = having(run.commands, 'add-iam-policy-binding');
    // The first grant three times (two refusals), every other once.
    expect(grants[0]).toBe(grants[1]);
    expect(grants[1]).toBe(grants[2]);
    expect(grants[3]).not.toBe(grants[2]);
    expect(run.stderr).toContain('retrying in 0s (attempt 2 of 8)');
    expect(run.stderr).toContain('retrying in 0s (attempt 3 of 8)');
    expect(having(run.commands, 'gcloud functions deploy ')).toHaveLength(3);
  });

  it('retries a function deploy the same way', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.run([], { ...NOW, STUB_FLAKY: 'functions deploy', STUB_FLAKY_TIMES: '1' });
    const deploys = having(run.commands, 'gcloud functions deploy ');
    expect(deploys).toHaveLength(4);
    expect(deploys[0]).toBe(deploys[1]);
  });

  it('gives up after a bounded number of attempts, saying why', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.attempt([], {
      ...NOW,
      DEPLOY_RETRY_ATTEMPTS: '4',
      STUB_FLAKY: 'add-iam-policy-binding',
      STUB_FLAKY_TIMES: '1000',
    });
    expect(run.code).toBe(1);
    expect(having(run.commands, 'add-iam-policy-binding')).toHaveLength(4);
    expect(run.stderr).toContain('still failed after 4 attempts');
    expect(having(run.commands, 'gcloud functions deploy')).toEqual([]);
  });

  it('does not retry a failure that is not propagation', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.attempt([], { ...NOW, STUB_FAIL: 'functions deploy' });
    expect(run.code).toBe(1);
    expect(having(run.commands, 'gcloud functions deploy')).toHaveLength(1);
    expect(run.stderr).toContain('500 Server Error');
    expect(run.stderr).not.toContain('retrying');
  });
});

describe('secret replication (item 4)', () => {
  const created = (lines: string[]) =>
    argv(having(lines, 'gcloud secrets create profile-api-mongo-uri')[0] ?? '');

  it('stores the secret it creates in the region only (user-managed replication)', async () => {
    const { first } = await deployed;
    const [create] = having(first.commands, 'gcloud secrets create profile-api-mongo-uri');
    expect(flag(create ?? '', '--replication-policy')).toBe('user-managed');
    expect(flag(create ?? '', '--locations')).toBe('europe-west1');
  });

  it('follows every region that reads it, or the settings', async () => {
    const multi = await plan({
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      API_KEYS_SECRET: 'keys',
      REGIONS: 'europe-west1,us-central1',
    });
    expect(created(multi.lines)).toContain('--locations=europe-west1,us-central1');
    const chosen = await plan({ SECRET_LOCATIONS: 'europe-west4, europe-west1' });
    expect(created(chosen.lines)).toContain('--locations=europe-west4,europe-west1');
    const automatic = await plan({ SECRET_REPLICATION: 'automatic' });
    const line = created(automatic.lines);
    expect(line).toContain('--replication-policy=automatic');
    expect(line.some((w) => w.startsWith('--locations'))).toBe(false);
  });

  it.each([
    [{ SECRET_REPLICATION: 'global' }, 'SECRET_REPLICATION must be user-managed or automatic'],
    [{ SECRET_LOCATIONS: 'EU' }, 'SECRET_LOCATIONS must be comma-separated regions'],
  ])('refuses %j', async (env, message) => {
    const result = await plan(env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
  });
});

describe('organisation policies (item 5)', () => {
  const EDGE = {
    EDGE: 'lb',
    DOMAIN: 'api.example.com',
    API_KEYS_SECRET: 'profile-api-keys',
  };
  const DRS = {
    'resource-manager--iam.allowedPolicyMemberDomains': JSON.stringify({
      constraint: 'constraints/iam.allowedPolicyMemberDomains',
      listPolicy: { allowedValues: ['C0abc123'] },
    }),
  };
  const PAP = {
    'resource-manager--storage.publicAccessPrevention': JSON.stringify({
      constraint: 'constraints/storage.publicAccessPrevention',
      booleanPolicy: { enforced: true },
    }),
  };
  const deployWith = async (policies: Record<string, string>, env: Record<string, string> = {}) => {
    const box = await sandbox({ ...SETTINGS, ...EDGE, ...env });
    exist(box, policies);
    return { box, run: box.run([], { DEPLOY_RETRY_FIRST_SECS: '0' }) };
  };

  it('reads the effective policies before creating anything', async () => {
    const { run } = await deployWith({});
    const reads = run.commands
      .map((c, i) => (c.includes('org-policies describe') ? i : -1))
      .filter((i) => i >= 0);
    expect(
      run.commands.filter((c) => c.includes('org-policies describe')).map((c) => argv(c)[4]),
    ).toEqual(['iam.allowedPolicyMemberDomains', 'storage.publicAccessPrevention']);
    for (const c of having(run.commands, 'org-policies describe'))
      expect(argv(c)).toContain('--effective');
    const firstChange = run.commands.findIndex((c) => / (create|enable|deploy) /.test(c));
    expect(Math.max(...reads)).toBeLessThan(firstChange);
    // Nothing forbids them: the public grants as before.
    expect(having(run.commands, '--member=allUsers')).toHaveLength(1);
    expect(argv(having(run.commands, 'gcloud functions deploy profile-api ')[0] ?? '')).toContain(
      '--allow-unauthenticated',
    );
  });

  it('under domain-restricted sharing: no allUsers anywhere, the invoker check off instead, plain edge errors', async () => {
    const { run, box } = await deployWith(DRS);
    expect(having(run.commands, 'allUsers')).toEqual([]);
    expect(having(run.commands, 'edge-errors')).toEqual([]);
    const [profile] = having(run.commands, 'gcloud functions deploy profile-api ');
    expect(argv(profile ?? '')).toContain('--no-allow-unauthenticated');
    expect(
      having(run.commands, 'gcloud run services update profile-api ', '--no-invoker-iam-check'),
    ).toHaveLength(1);
    expect(readFileSync(join(box.work, 'urlmap.yaml'), 'utf8')).not.toContain(
      'CustomErrorResponsePolicy',
    );
    expect(run.stderr).toContain(
      'domain-restricted sharing (iam.allowedPolicyMemberDomains) forbids granting allUsers',
    );
    expect(run.stderr).toContain('deploying with EDGE_JSON_ERRORS=false');
  });

  it('under enforced public access prevention: plain edge errors, the invoker grant as before', async () => {
    const { run } = await deployWith(PAP);
    expect(having(run.commands, 'edge-errors')).toEqual([]);
    expect(argv(having(run.commands, 'gcloud functions deploy profile-api ')[0] ?? '')).toContain(
      '--allow-unauthenticated',
    );
    expect(run.stderr).toContain('storage.publicAccessPrevention forbids the public bucket');
  });

  it('refuses a public function without API keys under domain-restricted sharing, before any change', async () => {
    const box = await sandbox({ ...SETTINGS, PROFILE_ALLOW_UNAUTHENTICATED: 'true' });
    exist(box, DRS);
    const run = box.attempt([]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('would open the profile function to anyone without an API key');
    expect(run.commands.filter((c) => !c.includes(' describe '))).toEqual([]);
  });

  it('says so and goes on when the policies cannot be read', async () => {
    const box = await sandbox({ ...SETTINGS, ...EDGE });
    const run = box.run([], { STUB_FAIL: 'org-policies describe' });
    expect(run.stderr).toContain("could not read the project's effective organisation policies");
    expect(having(run.commands, '--member=allUsers')).toHaveLength(1);
  });
});

describe('IAP for programs (item 6)', () => {
  const IAP = {
    EDGE: 'lb',
    DOMAIN: 'api.example.com',
    EDGE_IAP: 'true',
    IAP_MEMBERS: 'serviceAccount:caller@other.iam.gserviceaccount.com',
  };
  const CLIENT = '123456789012-abcdefghijklmnop.apps.googleusercontent.com';

  it('puts IAP on a custom OAuth client whose secret comes from Secret Manager, never printed', async () => {
    const box = await sandbox({
      ...SETTINGS,
      ...IAP,
      IAP_OAUTH_CLIENT_ID: CLIENT,
      IAP_OAUTH_CLIENT_SECRET_SECRET: 'iap-client-secret',
    });
    const run = box.run([]);
    const [read] = having(run.commands, 'gcloud secrets versions access latest');
    expect(flag(read ?? '', '--secret')).toBe('iap-client-secret');
    const updates = having(run.commands, 'gcloud compute backend-services update');
    expect(updates).toHaveLength(2);
    for (const update of updates) {
      expect(flag(update, '--iap')).toBe(
        `enabled,oauth2-client-id=${CLIENT},oauth2-client-secret=stub-secret-value-0123456789`,
      );
    }
    expect(run.stdout).not.toContain('stub-secret-value');
    expect(run.stdout).toContain('oauth2-client-secret=\\<secret\\ iap-client-secret\\>');
  });

  it('lets the OAuth clients of programs call through IAP', async () => {
    const other = '210987654321-zyxwvutsrqponmlk.apps.googleusercontent.com';
    const box = await sandbox({ ...SETTINGS, ...IAP });
    const run = box.run([], { DRY_RUN: '1', IAP_PROGRAMMATIC_CLIENTS: `${CLIENT}, ${other}` });
    const sets = having(planned(run.stdout), 'gcloud iap settings set');
    expect(sets.map((c) => flag(c, '--service'))).toEqual([
      'profile-api-backend',
      'profile-api-backend-europe-west1',
    ]);
    expect(readFileSync(argv(sets[0] ?? '')[4] ?? '', 'utf8')).toBe(
      `accessSettings:\n  oauthSettings:\n    programmaticClients:\n    - ${CLIENT}\n    - ${other}\n`,
    );
  });

  it.each([
    [
      { IAP_OAUTH_CLIENT_ID: CLIENT },
      'IAP_OAUTH_CLIENT_ID and IAP_OAUTH_CLIENT_SECRET_SECRET go together',
    ],
    [
      { IAP_OAUTH_CLIENT_ID: 'my-client', IAP_OAUTH_CLIENT_SECRET_SECRET: 's' },
      'IAP_OAUTH_CLIENT_ID must be an OAuth client id',
    ],
    [
      { IAP_PROGRAMMATIC_CLIENTS: 'everyone' },
      'IAP_PROGRAMMATIC_CLIENTS must be comma-separated OAuth client ids',
    ],
    [
      { EDGE_IAP: 'false', API_KEYS_SECRET: 'k', IAP_PROGRAMMATIC_CLIENTS: CLIENT },
      'need EDGE_IAP=true',
    ],
  ])('refuses %j', async (env, message) => {
    const box = await sandbox({ ...SETTINGS, ...IAP });
    const run = box.attempt([], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(message);
    expect(run.commands).toEqual([]);
  });
});

describe('settings the APIs would reject (item 8)', () => {
  it.each([
    [{ JOB_TIMEOUT: '3600s' }, 'JOB_TIMEOUT=3600s: must be 61s to 1800s'],
    [{ JOB_TIMEOUT: '30s' }, 'JOB_TIMEOUT=30s: must be 61s to 1800s'],
    [{ JOB_TIMEOUT: '30m' }, 'JOB_TIMEOUT must be seconds'],
    [{ PROFILE_CPU: '0.5' }, 'PROFILE_CPU=0.5 with PROFILE_CONCURRENCY=80'],
    [
      {
        PROFILE_CPU: '0.5',
        PROFILE_CONCURRENCY: '1',
        PROFILE_MEMORY: '1Gi',
        PROFILE_CPU_ALWAYS_ALLOCATED: 'true',
      },
      'PROFILE_CPU=0.5 with PROFILE_CPU_ALWAYS_ALLOCATED=true',
    ],
    [
      { PROFILE_CPU: '0.25', PROFILE_CONCURRENCY: '1', PROFILE_MEMORY: '1Gi' },
      'at most 512 MiB below 0.5 CPU',
    ],
    [{ PROFILE_CPU: '0.05', PROFILE_CONCURRENCY: '1' }, "Cloud Run's smallest CPU is 0.08"],
    [{ PROFILE_CPU: '3' }, 'or 1, 2, 4, 6 or 8 CPUs'],
    [{ PROFILE_MEMORY: '16Gi', PROFILE_CPU: '2' }, 'needs at least 4 CPUs'],
    [{ PROFILE_CONCURRENCY: '2000' }, 'PROFILE_CONCURRENCY must be 1 to 1000'],
    [
      { PROFILE_MIN_INSTANCES: '30' },
      'PROFILE_MIN_INSTANCES (30) must not exceed PROFILE_MAX_INSTANCES (20)',
    ],
    [{ PROFILE_TIMEOUT: '7200s' }, 'PROFILE_TIMEOUT must be 1s to 3600s'],
  ])('refuses %j before any call', async (env, message) => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt([], env);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(1);
    expect(result.commands).toEqual([]);
  });

  it('accepts a fraction of a CPU with concurrency 1 and little memory', async () => {
    const result = await plan({
      PROFILE_CPU: '0.5',
      PROFILE_CONCURRENCY: '1',
      PROFILE_MEMORY: '1Gi',
    });
    expect(result.stderr).not.toContain('deploy.sh: PROFILE_CPU');
    expect(result.code).toBe(0);
    expect(flag(having(result.lines, 'functions deploy profile-api ')[0] ?? '', '--cpu')).toBe(
      '0.5',
    );
  });
});

describe('the gcloud command lines of issue 23', () => {
  it('all parse with the real gcloud (no credentials: "no active account" means the flags parsed)', async (ctx) => {
    const real = realGcloud();
    if (!real) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const { first, second } = await deployed;
    const direct = await sandbox({ ...SETTINGS, VPC_CONNECTOR: '', VPC_NETWORK: 'prod-vpc' });
    const directRun = direct.run([], {
      VPC_SUBNET: 'prod-sub',
      PROFILE_CPU_ALWAYS_ALLOCATED: 'true',
    });
    const drs = await sandbox({
      ...SETTINGS,
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      API_KEYS_SECRET: 'profile-api-keys',
      RATE_LIMIT_KEY: 'api-key',
    });
    exist(drs, {
      'resource-manager--iam.allowedPolicyMemberDomains': JSON.stringify({
        listPolicy: { allowedValues: ['C0abc123'] },
      }),
    });
    const drsFirst = drs.run([], { RATE_LIMIT_API_KEY_PREFIXES: 'partnerA,partnerB' });
    const drsSecond = drs.run([], { RATE_LIMIT_API_KEY_PREFIXES: 'partnerA' });
    const iap = await sandbox({
      ...SETTINGS,
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      EDGE_IAP: 'true',
      IAP_OAUTH_CLIENT_ID: '123456789012-abcdefghijklmnop.apps.googleusercontent.com',
      IAP_OAUTH_CLIENT_SECRET_SECRET: 'iap-client-secret',
      IAP_PROGRAMMATIC_CLIENTS: '210987654321-zyxwvutsrqponmlk.apps.googleusercontent.com',
    });
    const iapRun = iap.run([]);
    const teardown = iap.run(['teardown'], { TEARDOWN_ALL: '1' });
    const lines = gcloudShapes(
      [
        ...first.commands,
        ...second.commands,
        ...directRun.commands,
        ...drsFirst.commands,
        ...drsSecond.commands,
        ...iapRun.commands,
        ...teardown.commands,
        ...printedCommands(first.stdout),
      ],
      (line) => line.replace(/partner[AB]/g, 'PARTNER').replace(/ 90\d /g, ' 90N '),
    );
    // Look-ups are left out of the shapes; this one is new.
    lines.push(...new Set(having(drsFirst.commands, 'org-policies describe')));
    for (const expected of [
      '--build-service-account=projects/demo-proj/serviceAccounts/',
      'gcloud projects add-iam-policy-binding demo-proj',
      '--replication-policy=user-managed --locations=europe-west1',
      '--clear-vpc-connector',
      '--network=prod-vpc --subnet=prod-sub --vpc-egress=private-ranges-only',
      'gcloud resource-manager org-policies',
      '--no-invoker-iam-check',
      'gcloud secrets versions access latest',
      'oauth2-client-id=',
      'gcloud iap settings set',
      'x-api-key',
      'security-policies rules delete',
      'service-accounts delete profile-api-build@',
    ]) {
      expect(having(lines, expected).length, expected).toBeGreaterThan(0);
    }
    expect(await unparsedByGcloud(lines, real?.path ?? '')).toEqual([]);
  }, 180_000);
});

describe('Aerospike settings (issue 23 items 11, 12, 15, 16) and operator keys', () => {
  const profileEnv = async (env: Record<string, string>) => {
    const box = await sandbox(SETTINGS);
    const result = box.run([], { DRY_RUN: '1', ...env });
    return { ...result, env: envFile(join(box.work, 'profile.env.yaml')) };
  };

  it('sizes the connections per node from the concurrency, and says what the server must accept', async () => {
    const sized = await profileEnv({});
    // 80 requests in flight, as many sockets closing after timeouts, and 8 to spare.
    expect(sized.env.get('AEROSPIKE_MAX_CONNS_PER_NODE')).toBe('168');
    expect(sized.stdout).toContain(
      '# Aerospike: up to 168 connections per node from each profile instance (PROFILE_CONCURRENCY=80 x 2 + 8 unless set): up to 3360 on each node from PROFILE_MAX_INSTANCES=20 instances',
    );
    expect(sized.stdout).toContain("the server's proto-fd-max (default 15000) must be above that");
    expect(
      (await profileEnv({ PROFILE_CONCURRENCY: '250' })).env.get('AEROSPIKE_MAX_CONNS_PER_NODE'),
    ).toBe('508');
    const kept = await profileEnv({ AEROSPIKE_MAX_CONNS_PER_NODE: '300' });
    expect(kept.env.get('AEROSPIKE_MAX_CONNS_PER_NODE')).toBe('300');
    expect(kept.stderr).not.toContain('AEROSPIKE_MAX_CONNS_PER_NODE');
  });

  it('warns when the limit leaves a full instance nothing spare, or the nodes would need more than proto-fd-max', async () => {
    const tight = await profileEnv({ AEROSPIKE_MAX_CONNS_PER_NODE: '80' });
    expect(tight.stderr).toContain(
      'AEROSPIKE_MAX_CONNS_PER_NODE=80 is not above PROFILE_CONCURRENCY=80',
    );
    const many = await profileEnv({ PROFILE_MAX_INSTANCES: '100' });
    expect(many.stderr).toContain(
      'up to 16800 connections per Aerospike node from the profile function alone',
    );
    const bad = await plan({ AEROSPIKE_MAX_CONNS_PER_NODE: 'lots' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('AEROSPIKE_MAX_CONNS_PER_NODE must be a whole number');
  });

  it('passes the client settings on and mounts the TLS CA and the operator keys from Secret Manager', async () => {
    const box = await sandbox(SETTINGS);
    const run = box.run([], {
      AEROSPIKE_MAX_SOCKET_IDLE_SECS: '50',
      AEROSPIKE_LOG_LEVEL: 'WARN',
      AEROSPIKE_TLS_NAME: 'aerospike-cluster',
      AEROSPIKE_AUTH_MODE: 'PKI',
      AEROSPIKE_TLS_CA_SECRET: 'aerospike-ca',
      OPERATOR_API_KEYS_SECRET: 'operator-keys',
      API_KEYS_SECRET: 'profile-api-keys',
    });
    const env = envFile(join(box.work, 'profile.env.yaml'));
    expect(Object.fromEntries(env)).toMatchObject({
      AEROSPIKE_MAX_SOCKET_IDLE_SECS: '50',
      AEROSPIKE_LOG_LEVEL: 'WARN',
      AEROSPIKE_TLS_NAME: 'aerospike-cluster',
      AEROSPIKE_AUTH_MODE: 'PKI',
    });
    expect(env.has('AEROSPIKE_TLS_CA')).toBe(false);
    expect(env.has('OPERATOR_API_KEYS')).toBe(false);
    const [profile] = having(run.commands, 'gcloud functions deploy profile-api ');
    expect(flag(profile ?? '', '--set-secrets')?.split(',')).toEqual([
      'API_KEYS=profile-api-keys:latest',
      'OPERATOR_API_KEYS=operator-keys:latest',
      'AEROSPIKE_TLS_CA=aerospike-ca:latest',
    ]);
    const grants = having(run.commands, 'gcloud secrets add-iam-policy-binding');
    for (const secret of ['profile-api-keys', 'operator-keys', 'aerospike-ca']) {
      expect(having(grants, ` ${secret} `, 'profile-api-profile@', 'secretAccessor')).toHaveLength(
        1,
      );
    }
  });
});

describe('Cloud Armor rule descriptions', () => {
  it('fit the 64 characters Cloud Armor takes, at the longest settings', async () => {
    const result = await plan({
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      API_KEYS_SECRET: 'profile-api-keys',
      RATE_LIMIT_KEY: 'api-key',
      RATE_LIMIT_PER_MIN: '1000000',
      RATE_LIMIT_API_KEY_PREFIXES: 'k'.repeat(32),
    });
    const rules = having(result.lines, 'security-policies rules create');
    expect(rules).toHaveLength(2);
    for (const rule of rules) expect(flag(rule, '--description')?.length).toBeLessThanOrEqual(64);
  });
});
