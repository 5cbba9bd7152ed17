import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  argv,
  attemptVerify,
  DEMO_SETTINGS,
  envFile,
  exist,
  flag,
  gcloudShapes,
  having,
  printedCommands,
  ROOT,
  realGcloud,
  type Sandbox,
  STUBS,
  sandbox as stubSandbox,
  unparsedByGcloud,
} from '../helpers/stub-cli/deploy-sandbox.js';

// deploy.sh against a stub gcloud/bq that records every call and remembers what exists.
const { MONGO_URI } = DEMO_SETTINGS;
const ID_TYPES_JSON = JSON.stringify([
  { name: 'email', code: 'e1', pattern: '^[0-9a-f]{64}$', normalise: 'lower' },
]);
const ENV = {
  ...DEMO_SETTINGS,
  AEROSPIKE_HOSTS: '10.0.0.5:3000,10.0.0.6:3000',
  AEROSPIKE_USER: 'profile_api',
  AEROSPIKE_PASSWORD_SECRET: 'aerospike-password',
  LINKED_IDS_MAX: '25',
  ID_TYPES_JSON,
};
const SA = (id: string) => `profile-api-${id}@demo-proj.iam.gserviceaccount.com`;

const SETTINGS_FOR_VERIFY = { PROJECT_ID: 'demo-proj', MAPPING_TABLE: ENV.MAPPING_TABLE };
const VERSION = '20261130T043000Z-1a2b3c4d';
const MIB = 1_048_576;

const sandbox = () => stubSandbox(ENV);

interface Condition {
  readonly title: string;
  readonly description?: string;
  readonly expression: string;
}

const readCondition = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Condition;

/** The documented prefix-scoped Cloud Storage condition: the objects, and listing them. */
const folderOnly = (folder: string) =>
  `resource.name.startsWith("projects/_/buckets/demo-proj-profile-api-snapshots/objects/${folder}")` +
  ` || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("${folder}")`;

// The measured figures deploy.sh sizes the profile function with, read from the script itself.
const DEPLOY_SH = readFileSync(join(ROOT, 'deploy.sh'), 'utf8');
function figure(name: string): number {
  const value = new RegExp(`^${name}=(\\d+)$`, 'm').exec(DEPLOY_SH)?.[1];
  if (value === undefined) throw new Error(`deploy.sh has no single assignment ${name}=<number>`);
  return Number(value);
}
const BASE_MIB = figure('PROFILE_BASE_MIB');
const REFRESH_BYTES_PER_ID = figure('REFRESH_BYTES_PER_ID');
const INDEX_BYTES_PER_ID = figure('INDEX_BYTES_PER_ID');
const SIZES_MIB: ReadonlyArray<readonly [string, number]> = [
  ['512Mi', 512],
  ['1Gi', 1024],
  ['2Gi', 2048],
  ['4Gi', 4096],
  ['8Gi', 8192],
  ['16Gi', 16_384],
  ['32Gi', 32_768],
];

/** Cloud Run's minimum CPUs for a memory size (its "memory limits" page). */
function minCpu(mib: number): number {
  if (mib > 24 * 1024) return 8;
  if (mib > 16 * 1024) return 6;
  if (mib > 8 * 1024) return 4;
  if (mib > 4 * 1024) return 2;
  return 1;
}

/** What --help promises for the profile function, or undefined when no size is big enough. */
function expectedSizing(ids: number) {
  const needMib = BASE_MIB + Math.ceil((ids * REFRESH_BYTES_PER_ID) / MIB);
  const size = SIZES_MIB.find(([, mib]) => mib >= needMib);
  if (!size) return undefined;
  const [memory, mib] = size;
  return { memory, cpu: String(minCpu(mib)), maxBytes: maxBytesFor(mib) };
}

function maxBytesFor(mib: number): string {
  const bytes =
    (BigInt(mib - BASE_MIB) * BigInt(MIB) * BigInt(INDEX_BYTES_PER_ID)) /
    BigInt(REFRESH_BYTES_PER_ID);
  return String(bytes);
}

const firstDeploy = sandbox().then((box) => ({ box, first: box.run(), second: box.run() }));

// A project an older deploy.sh set up: bucket-wide grants, and one for a folder since renamed.
const BUCKET_POLICY = 'storage--demo-proj-profile-api-snapshots.iam.json';
const olderDeploy = firstDeploy.then(async ({ box: first }) => {
  const box = await sandbox();
  const current = readCondition(join(first.work, 'catalog.condition.json'));
  const oldFolder: Condition = {
    title: 'profile-api mapping snapshots',
    expression: folderOnly('old-prefix/mapping/'),
  };
  const member = (id: string) => `serviceAccount:${SA(id)}`;
  const policy = {
    version: 3,
    etag: 'BwYzAbCdEfG=',
    bindings: [
      { role: 'roles/storage.legacyBucketOwner', members: ['projectOwner:demo-proj'] },
      { role: 'roles/storage.objectViewer', members: [member('profile')] },
      { role: 'roles/storage.objectUser', members: [member('catalog'), member('mapping')] },
      { role: 'roles/storage.objectUser', members: [member('catalog')], condition: current },
      { role: 'roles/storage.objectUser', members: [member('mapping')], condition: oldFolder },
    ],
  };
  writeFileSync(join(box.state, BUCKET_POLICY), JSON.stringify(policy));
  return { box, oldFolder, older: box.run([], { PROFILE_CPU_ALWAYS_ALLOCATED: 'true' }) };
});

describe('deploy.sh on a new project', () => {
  it('enables the APIs and creates the bucket with a retention rule for superseded versions', async () => {
    const { first, box } = await firstDeploy;
    expect(
      having(
        first.commands,
        'gcloud services enable',
        'cloudfunctions.googleapis.com',
        'cloudscheduler.googleapis.com',
        'vpcaccess.googleapis.com',
      ),
    ).toHaveLength(1);
    expect(
      having(
        first.commands,
        'gcloud storage buckets create gs://demo-proj-profile-api-snapshots',
        '--uniform-bucket-level-access',
      ),
    ).toHaveLength(1);
    const lifecycle = JSON.parse(readFileSync(join(box.work, 'lifecycle.json'), 'utf8'));
    expect(lifecycle.rule[0]).toEqual({
      action: { type: 'Delete' },
      condition: { daysSinceCustomTime: 30, matchesPrefix: ['profile-api/'] },
    });
  });

  it('creates one service account per function and one for the scheduler, with least privilege', async () => {
    const { first } = await firstDeploy;
    for (const id of ['profile', 'catalog', 'mapping', 'scheduler']) {
      expect(
        having(first.commands, 'gcloud iam service-accounts create', `profile-api-${id} `),
      ).toHaveLength(1);
    }
    const bucketGrants = having(first.commands, 'gcloud storage buckets add-iam-policy-binding');
    expect(bucketGrants.map((c) => [flag(c, '--member'), flag(c, '--role')])).toEqual([
      [`serviceAccount:${SA('profile')}`, 'roles/storage.objectViewer'],
      [`serviceAccount:${SA('catalog')}`, 'roles/storage.objectUser'],
      [`serviceAccount:${SA('mapping')}`, 'roles/storage.objectUser'],
    ]);
    expect(
      having(first.commands, 'secrets add-iam-policy-binding profile-api-mongo-uri', SA('catalog')),
    ).toHaveLength(1);
    expect(
      having(first.commands, 'secrets add-iam-policy-binding aerospike-password', SA('profile')),
    ).toHaveLength(1);
    expect(
      having(
        first.commands,
        'projects add-iam-policy-binding demo-proj',
        SA('mapping'),
        'roles/bigquery.jobUser',
      ),
    ).toHaveLength(1);
    expect(
      having(
        first.commands,
        'bq add-iam-policy-binding',
        SA('mapping'),
        'roles/bigquery.dataViewer',
        'demo-proj:identity.user_mapping',
      ),
    ).toHaveLength(1);
    // The scheduler may invoke the two jobs and nothing else.
    const invokers = having(first.commands, 'add-invoker-policy-binding');
    expect(invokers).toHaveLength(2);
    expect(having(invokers, SA('scheduler'), 'snapshot-catalog')).toHaveLength(1);
    expect(having(invokers, SA('scheduler'), 'snapshot-mapping')).toHaveLength(1);
  });

  it('lets each job write only its own snapshot folder, and the profile function only read', async () => {
    const { first } = await firstDeploy;
    const bucketGrants = having(first.commands, 'gcloud storage buckets add-iam-policy-binding');
    const conditions = bucketGrants.map((c) => {
      expect(c).not.toContain('--condition=None');
      return readCondition(flag(c, '--condition-from-file') ?? 'missing --condition-from-file');
    });
    expect(conditions.map((c) => c.expression)).toEqual([
      folderOnly('profile-api/'),
      folderOnly('profile-api/catalog/'),
      folderOnly('profile-api/mapping/'),
    ]);
    for (const condition of conditions) expect(condition.title).toMatch(/\S/);
    // gcloud compares title and description too: each grant's condition is its own.
    expect(new Set(conditions.map((c) => c.title)).size).toBe(3);
    expect(
      having(first.commands, 'gcloud storage buckets get-iam-policy', '--format=json'),
    ).toHaveLength(1);
    expect(having(first.commands, 'remove-iam-policy-binding')).toEqual([]);
  });

  it('creates the Mongo URI secret from stdin, never on a command line', async () => {
    const { first, box } = await firstDeploy;
    expect(
      having(first.commands, 'gcloud secrets create profile-api-mongo-uri', '--data-file=-'),
    ).toHaveLength(1);
    expect(readFileSync(join(box.state, 'secrets--profile-api-mongo-uri.value'), 'utf8')).toBe(
      MONGO_URI,
    );
    expect(first.commands.join('\n')).not.toContain('s3cret');
    expect(first.stdout).not.toContain('s3cret');
  });

  it('deploys the profile function gen2 on nodejs24, warm, concurrent, on the VPC', async () => {
    const { first, box } = await firstDeploy;
    const [profile] = having(first.commands, 'gcloud functions deploy profile-api ');
    for (const flag of [
      '--gen2',
      '--runtime=nodejs24',
      '--entry-point=profile',
      '--trigger-http',
      `--run-service-account=${SA('profile')}`,
      `--memory=${expectedSizing(10_000_000)?.memory}`,
      `--cpu=${expectedSizing(10_000_000)?.cpu}`,
      '--min-instances=1',
      '--concurrency=80',
      '--vpc-connector=aerospike-connector',
      '--egress-settings=private-ranges-only',
      '--ingress-settings=all',
      '--no-allow-unauthenticated',
      '--set-secrets=AEROSPIKE_PASSWORD=aerospike-password:latest',
    ]) {
      expect(profile).toContain(flag);
    }
    const env = envFile(join(box.work, 'profile.env.yaml'));
    expect(env.get('SNAPSHOT_URI')).toBe('gs://demo-proj-profile-api-snapshots/profile-api');
    expect(env.get('PROFILE_STORE')).toBe('aerospike');
    expect(env.get('AEROSPIKE_HOSTS')).toBe('10.0.0.5:3000,10.0.0.6:3000');
    expect(env.get('AEROSPIKE_USER')).toBe('profile_api');
    expect(env.get('LINKED_IDS_MAX')).toBe('25');
    expect(env.get('ID_TYPES_JSON')).toBe(ID_TYPES_JSON);
    expect(env.has('MONGO_URI')).toBe(false);
    expect(env.get('IGNORED_ROUTES')).toBe('');
    // Otherwise functions-framework answers an error escaping a request with its message.
    expect(env.get('NODE_ENV')).toBe('production');
    expect(env.get('MAPPING_MAX_BYTES')).toBe(expectedSizing(10_000_000)?.maxBytes);
    expect(having(first.commands, 'gcloud run services update')).toEqual([]);
  });

  it('deploys both jobs private, one run at a time, with timeouts sized for the job', async () => {
    const { first, box } = await firstDeploy;
    const [catalog] = having(
      first.commands,
      'gcloud functions deploy profile-api-snapshot-catalog',
    );
    const [mapping] = having(
      first.commands,
      'gcloud functions deploy profile-api-snapshot-mapping',
    );
    for (const job of [catalog, mapping]) {
      for (const flag of [
        '--runtime=nodejs24',
        '--timeout=1800s',
        '--max-instances=1',
        '--concurrency=1',
        '--no-allow-unauthenticated',
      ]) {
        expect(job).toContain(flag);
      }
    }
    expect(catalog).toContain('--entry-point=snapshotCatalog');
    expect(catalog).toContain('--set-secrets=MONGO_URI=profile-api-mongo-uri:latest');
    expect(mapping).toContain('--entry-point=snapshotMapping');
    expect(mapping).not.toContain('--set-secrets');
    expect(envFile(join(box.work, 'catalog.env.yaml')).get('JOB_TIMEOUT_MS')).toBe('1740000');
    const mappingEnv = envFile(join(box.work, 'mapping.env.yaml'));
    for (const env of [envFile(join(box.work, 'catalog.env.yaml')), mappingEnv]) {
      expect(env.get('NODE_ENV')).toBe('production');
    }
    expect(mappingEnv.get('MAPPING_TABLE')).toBe('demo-proj.identity.user_mapping');
    // The job refuses to publish a mapping bigger than the profile function loads.
    expect(mappingEnv.get('MAPPING_MAX_BYTES')).toBe(
      envFile(join(box.work, 'profile.env.yaml')).get('MAPPING_MAX_BYTES'),
    );
    expect(envFile(join(box.work, 'catalog.env.yaml')).has('MAPPING_MAX_BYTES')).toBe(false);
  });

  it('uploads a build with production dependencies only', async () => {
    const { box } = await firstDeploy;
    const pkg = JSON.parse(readFileSync(join(box.work, 'source/package.json'), 'utf8'));
    expect(pkg.devDependencies).toBeUndefined();
    expect(pkg.dependencies).toHaveProperty('aerospike');
    expect(pkg.main).toBe('dist/functions/index.js');
    expect(existsSync(join(box.work, 'source/dist/functions/index.js'))).toBe(true);
    expect(existsSync(join(box.work, 'source/package-lock.json'))).toBe(true);
  });

  it('creates the scheduler jobs with OIDC, retries and an attempt deadline, then prints the URL', async () => {
    const { first } = await firstDeploy;
    const jobs = having(first.commands, 'gcloud scheduler jobs create http');
    expect(jobs).toHaveLength(2);
    const [catalog] = having(jobs, 'profile-api-snapshot-catalog ');
    for (const flag of [
      '--uri=https://profile-api-snapshot-catalog-abc123-ew.a.run.app/',
      `--oidc-service-account-email=${SA('scheduler')}`,
      '--oidc-token-audience=https://profile-api-snapshot-catalog-abc123-ew.a.run.app',
      '--http-method=POST',
      '--headers=Content-Type=application/json',
      '--attempt-deadline=1800s',
      '--max-retry-attempts=3',
    ]) {
      expect(catalog).toContain(flag);
    }
    expect(first.stdout).toContain('Profile function: https://profile-api-abc123-ew.a.run.app');
    expect(first.stdout).toMatch(
      /curl -H "Authorization: Bearer .*" 'https:\/\/profile-api-abc123-ew\.a\.run\.app\/\?id=/,
    );
  });
});

describe('deploy.sh again on the same project', () => {
  it('creates nothing and updates what exists', async () => {
    const { second } = await firstDeploy;
    expect(
      second.commands.filter((c) => / (create|rm) /.test(c) && !c.includes(' describe ')),
    ).toEqual([]);
    expect(having(second.commands, 'gcloud functions deploy')).toHaveLength(3);
    const updates = having(second.commands, 'gcloud scheduler jobs update http');
    expect(updates).toHaveLength(2);
    expect(updates[0]).toContain('--update-headers=Content-Type=application/json');
  });

  it("replaces an older deployment's bucket-wide grants with folder-scoped ones, adding first", async () => {
    const { older, oldFolder } = await olderDeploy;
    const bucket = having(older.commands, 'gcloud storage buckets ', '-iam-policy-binding');
    const summary = bucket.map((c) => [
      argv(c)[3],
      flag(c, '--member')?.replace(/^serviceAccount:profile-api-|@.*$/g, ''),
      flag(c, '--role'),
      flag(c, '--condition') ?? 'file',
    ]);
    expect(summary).toEqual([
      ['add-iam-policy-binding', 'profile', 'roles/storage.objectViewer', 'file'],
      ['remove-iam-policy-binding', 'profile', 'roles/storage.objectViewer', 'None'],
      // The catalog account has its folder-scoped grant already: only the old one goes.
      ['remove-iam-policy-binding', 'catalog', 'roles/storage.objectUser', 'None'],
      ['add-iam-policy-binding', 'mapping', 'roles/storage.objectUser', 'file'],
      ['remove-iam-policy-binding', 'mapping', 'roles/storage.objectUser', 'None'],
      ['remove-iam-policy-binding', 'mapping', 'roles/storage.objectUser', 'file'],
    ]);
    // A removal must name the old condition exactly (gcloud matches title and description too).
    const [, , , , , staleRemoval] = bucket;
    expect(readCondition(flag(staleRemoval ?? '', '--condition-from-file') ?? '')).toEqual(
      oldFolder,
    );
    expect(having(older.commands, 'legacyBucketOwner')).toEqual([]);
  });
});

describe('deploy.sh sizing the profile function', () => {
  it.each([1_000_000, 10_000_000, 40_000_000, 100_000_000, 200_000_000])(
    'for MAPPING_IDS=%i: memory, CPU and MAPPING_MAX_BYTES as --help says',
    async (ids) => {
      const box = await sandbox();
      const expected = expectedSizing(ids);
      const result = box.attempt([], { DRY_RUN: '1', MAPPING_IDS: String(ids) });
      if (!expected) {
        expect(result.code).toBe(1);
        expect(result.stderr).toContain("more than Cloud Run's largest");
        return;
      }
      expect(result.code).toBe(0);
      const [profile] = having(result.stdout.split('\n'), '+ gcloud functions deploy profile-api ');
      expect(flag(profile ?? '', '--memory')).toBe(expected.memory);
      expect(flag(profile ?? '', '--cpu')).toBe(expected.cpu);
      for (const file of ['profile.env.yaml', 'mapping.env.yaml']) {
        expect(envFile(join(box.work, file)).get('MAPPING_MAX_BYTES')).toBe(expected.maxBytes);
      }
      expect(result.stderr).not.toContain('warning');
    },
  );

  it('refuses a mapping no Cloud Run instance can hold', async () => {
    const box = await sandbox();
    const result = box.attempt([], { DRY_RUN: '1', MAPPING_IDS: '10000000000' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("more than Cloud Run's largest (32Gi)");
  });

  it('warns when an explicit PROFILE_MEMORY is too small, and caps the mapping to fit it', async () => {
    const box = await sandbox();
    // Twice what 1Gi holds by the measured figures.
    const ids = Math.ceil((2 * 1024 * MIB) / REFRESH_BYTES_PER_ID);
    const result = box.run([], { DRY_RUN: '1', MAPPING_IDS: String(ids), PROFILE_MEMORY: '1Gi' });
    expect(result.stderr).toMatch(/warning: PROFILE_MEMORY=1Gi is less than the \d+ MiB/);
    expect(result.stdout).toContain('--memory=1Gi --cpu=1 ');
    expect(envFile(join(box.work, 'profile.env.yaml')).get('MAPPING_MAX_BYTES')).toBe(
      maxBytesFor(1024),
    );
  });

  it('keeps explicit PROFILE_CPU and MAPPING_MAX_BYTES as they are', async () => {
    const box = await sandbox();
    const result = box.run([], {
      DRY_RUN: '1',
      PROFILE_MEMORY: '3Gi',
      PROFILE_CPU: '2',
      MAPPING_MAX_BYTES: '123456789',
    });
    expect(result.stdout).toContain('--memory=3Gi --cpu=2 ');
    for (const file of ['profile.env.yaml', 'mapping.env.yaml']) {
      expect(envFile(join(box.work, file)).get('MAPPING_MAX_BYTES')).toBe('123456789');
    }
  });

  it('documents the settings and the formula in --help', async () => {
    const box = await sandbox();
    const { stdout } = box.run(['--help']);
    for (const text of [
      'MAPPING_IDS',
      'PROFILE_MEMORY',
      `${BASE_MIB} MiB + MAPPING_IDS * ${REFRESH_BYTES_PER_ID} B`,
      `MAPPING_MAX_BYTES          (PROFILE_MEMORY - ${BASE_MIB} MiB) * ${INDEX_BYTES_PER_ID} / ${REFRESH_BYTES_PER_ID}`,
      'PROFILE_CPU_ALWAYS_ALLOCATED',
      'verify',
      'rollback KIND VERSION',
    ]) {
      expect(stdout).toContain(text);
    }
  });
});

describe('deploy.sh with PROFILE_CPU_ALWAYS_ALLOCATED', () => {
  it('turns CPU throttling off on the profile service right after deploying it', async () => {
    const { older } = await olderDeploy;
    const deploys = older.commands.filter((c) => c.startsWith('gcloud functions deploy '));
    const update = older.commands.indexOf(
      'gcloud run services update profile-api --project=demo-proj --region=europe-west1 --no-cpu-throttling',
    );
    expect(update).toBeGreaterThan(older.commands.indexOf(deploys[0] ?? ''));
    expect(update).toBeLessThan(older.commands.indexOf(deploys[1] ?? ''));
    expect(having(older.commands, 'gcloud run services update')).toHaveLength(1);
  });

  it('rejects anything but true or false', async () => {
    const box = await sandbox();
    const result = box.attempt([], { DRY_RUN: '1', PROFILE_CPU_ALWAYS_ALLOCATED: 'yes' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PROFILE_CPU_ALWAYS_ALLOCATED must be true or false');
  });
});

describe('deploy.sh verify', () => {
  const deployed = (box: Sandbox) => exist(box, { 'functions--profile-api-snapshot-mapping': '' });
  // Whatever the shell running the tests has, these start unset.
  const isolated = { BIGQUERY_EMULATOR_HOST: undefined, GOOGLE_OAUTH_ACCESS_TOKEN: undefined };

  it('prints the build, the local dry run and the deployed dry run with DRY_RUN=1', async () => {
    const box = await sandbox();
    const result = box.attempt(['verify'], { ...isolated, DRY_RUN: '1' }, SETTINGS_FOR_VERIFY);
    expect(result.code).toBe(0);
    expect(result.commands).toEqual([]);
    const lines = result.stdout.split('\n');
    expect(lines).toContain('+ npm run build --silent');
    const [local] = having(lines, 'dist/functions/snapshot-mapping/dry-run.js');
    expect(argv(local?.slice(2) ?? '')).toEqual([
      'env',
      'MAPPING_TABLE=demo-proj.identity.user_mapping',
      'BIGQUERY_PROJECT=demo-proj',
      'node',
      'dist/functions/snapshot-mapping/dry-run.js',
    ]);
    const [call] = having(lines, '+ gcloud functions call profile-api-snapshot-mapping');
    expect(JSON.parse(flag(call?.slice(2) ?? '', '--data') ?? '')).toEqual({ dryRun: true });
  });

  it("passes the mapping settings and the caller's token, then has the deployed job dry-run", async () => {
    const box = await sandbox();
    deployed(box);
    const result = await attemptVerify(
      box,
      {
        MAPPING_WINDOW_DAYS: '3',
        MAPPING_PERSON_COLUMN: 'household_id',
        BIGQUERY_LOCATION: 'EU',
        ID_TYPES_JSON,
      },
      SETTINGS_FOR_VERIFY,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const seen = result.seen();
    expect(seen).toMatchObject({
      MAPPING_TABLE: 'demo-proj.identity.user_mapping',
      MAPPING_WINDOW_DAYS: '3',
      MAPPING_PERSON_COLUMN: 'household_id',
      BIGQUERY_PROJECT: 'demo-proj',
      BIGQUERY_LOCATION: 'EU',
      ID_TYPES_JSON,
      GOOGLE_OAUTH_ACCESS_TOKEN: 'ya29.stub-access-token',
    });
    expect(result.stdout).not.toContain('ya29.stub-access-token');
    expect(result.stdout).toContain('mapping query OK');
    const [call] = having(result.commands, 'gcloud functions call profile-api-snapshot-mapping');
    expect(argv(call ?? '')).toEqual([
      'gcloud',
      'functions',
      'call',
      'profile-api-snapshot-mapping',
      '--gen2',
      '--project=demo-proj',
      '--region=europe-west1',
      '--data={"dryRun":true}',
    ]);
    expect(result.stdout).toContain('Verified');
  });

  it("stops with BigQuery's message when the query does not pass, before the deployed job", async () => {
    const box = await sandbox();
    deployed(box);
    const result = await attemptVerify(
      box,
      { FAKE_DRY_RUN_ERROR: 'Unrecognized name: person_id at [4:10]' },
      SETTINGS_FOR_VERIFY,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Unrecognized name: person_id at [4:10]');
    expect(result.stderr).toContain(
      "does not pass BigQuery's dry run against demo-proj.identity.user_mapping",
    );
    expect(having(result.commands, 'functions call')).toEqual([]);
  });

  it("fails when the deployed job's dry run fails", async () => {
    const box = await sandbox();
    deployed(box);
    const result = await attemptVerify(box, { STUB_FAIL: 'functions call' }, SETTINGS_FOR_VERIFY);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the deployed profile-api-snapshot-mapping failed its dry run');
    expect(result.stdout).not.toContain('Verified');
  });

  it('checks the local code only while the mapping job is not deployed', async () => {
    const box = await sandbox();
    const result = await attemptVerify(box, {}, SETTINGS_FOR_VERIFY);
    expect(result.code).toBe(0);
    expect(having(result.commands, 'functions call')).toEqual([]);
    expect(result.stdout).toContain('profile-api-snapshot-mapping is not deployed');
  });

  it('calls no gcloud at all against a BigQuery test server', async () => {
    const box = await sandbox();
    deployed(box);
    const result = await attemptVerify(
      box,
      { BIGQUERY_EMULATOR_HOST: 'http://127.0.0.1:9050', GOOGLE_OAUTH_ACCESS_TOKEN: 'test-token' },
      SETTINGS_FOR_VERIFY,
    );
    expect(result.code).toBe(0);
    expect(result.commands).toEqual([]);
    expect(result.seen()).toMatchObject({
      BIGQUERY_EMULATOR_HOST: 'http://127.0.0.1:9050',
      GOOGLE_OAUTH_ACCESS_TOKEN: 'test-token',
    });
  });

  it('needs MAPPING_TABLE', async () => {
    const box = await sandbox();
    const result = box.attempt(['verify'], { DRY_RUN: '1' }, { PROJECT_ID: 'demo-proj' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('MAPPING_TABLE is required');
  });
});

describe('deploy.sh rollback', () => {
  const withJob = async (kind: string) => {
    const box = await sandbox();
    exist(box, { [`scheduler--profile-api-snapshot-${kind}`]: '' });
    return box;
  };
  const only = { PROJECT_ID: 'demo-proj' };

  it('pauses the scheduler job, has the job republish the version, and says how to resume', async () => {
    const box = await withJob('mapping');
    const result = box.attempt(['rollback', 'mapping', VERSION], {}, only);
    expect(result.code).toBe(0);
    const changes = result.commands.filter((c) => !c.includes(' describe '));
    expect(changes.map(argv)).toEqual([
      [
        'gcloud',
        'scheduler',
        'jobs',
        'pause',
        'profile-api-snapshot-mapping',
        '--project=demo-proj',
        '--location=europe-west1',
      ],
      [
        'gcloud',
        'functions',
        'call',
        'profile-api-snapshot-mapping',
        '--gen2',
        '--project=demo-proj',
        '--region=europe-west1',
        `--data={"rollbackTo":"${VERSION}"}`,
      ],
    ]);
    expect(result.stdout).toContain(
      '  gcloud scheduler jobs resume profile-api-snapshot-mapping --project=demo-proj --location=europe-west1\n',
    );
  });

  it('rolls back again while the job is still paused', async () => {
    const box = await withJob('catalog');
    box.attempt(['rollback', 'catalog', VERSION], {}, only);
    const again = box.attempt(['rollback', 'catalog', '20261201T100000Z-0badc0de'], {}, only);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(having(again.commands, 'jobs pause')).toEqual([]);
    expect(having(again.commands, 'functions call profile-api-snapshot-catalog')).toHaveLength(1);
  });

  it('leaves the job paused and says so when the rollback fails', async () => {
    const box = await withJob('mapping');
    const result = box.attempt(
      ['rollback', 'mapping', VERSION],
      { STUB_FAIL: 'functions call' },
      only,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('The job stays paused');
    expect(result.stderr).toContain('gcloud scheduler jobs resume profile-api-snapshot-mapping');
  });

  it.each([
    [['rollback', 'profile', VERSION], 'KIND must be catalog or mapping'],
    [['rollback', 'mapping', '20261130-1a2b3c4d'], 'VERSION must look like'],
    [['rollback', 'mapping', '20261130T043000Z-1A2B3C4D'], 'VERSION must look like'],
    [['rollback', 'mapping', `${VERSION}.manifest.json`], 'VERSION must look like'],
    [['rollback', 'mapping'], 'takes a KIND and a VERSION'],
    [['rollback', 'mapping', VERSION, 'extra'], 'takes a KIND and a VERSION'],
  ])('rejects %j with the usage, touching nothing', async (args, message) => {
    const box = await withJob('mapping');
    const result = box.attempt(args, {}, only);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('./deploy.sh rollback catalog|mapping VERSION');
    expect(result.commands).toEqual([]);
  });
});

describe('deploy.sh modes', () => {
  it('prints every command and runs none with DRY_RUN=1', async () => {
    const box = await sandbox();
    const { commands, stdout } = box.run([], { DRY_RUN: '1' });
    expect(commands).toEqual([]);
    expect(stdout).toContain('+ gcloud functions deploy profile-api --gen2');
    expect(stdout).toContain('+ gcloud scheduler jobs create http profile-api-snapshot-mapping');
  });

  it('tears down the functions and jobs, keeping the bucket', async () => {
    const box = await sandbox();
    box.run();
    const { commands } = box.run(['teardown']);
    expect(having(commands, 'gcloud scheduler jobs delete')).toHaveLength(2);
    expect(having(commands, 'gcloud functions delete')).toHaveLength(3);
    expect(having(commands, 'storage rm')).toEqual([]);
  });

  it('refuses to run without its required settings, naming them', async () => {
    const result = spawnSync('bash', [join(ROOT, 'deploy.sh')], {
      encoding: 'utf8',
      env: { PATH: `${STUBS}${delimiter}${process.env.PATH}`, PROJECT_ID: 'demo-proj' },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('AEROSPIKE_HOSTS is required');
  });
});

describe('the generated gcloud command lines', () => {
  it('all parse with the real gcloud (no credentials: "no active account" means the flags parsed)', async (ctx) => {
    const real = realGcloud();
    if (!real) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const { first, second } = await firstDeploy;
    const { older } = await olderDeploy;
    const box = await sandbox();
    box.run();
    const teardown = box.run(['teardown'], { TEARDOWN_ALL: '1' });
    // verify and rollback against deployed jobs (the stub state says they exist).
    const ops = await sandbox();
    exist(ops, {
      'functions--profile-api-snapshot-mapping': '',
      'scheduler--profile-api-snapshot-mapping': '',
    });
    const verify = await attemptVerify(ops, {}, SETTINGS_FOR_VERIFY);
    const rollback = ops.attempt(['rollback', 'mapping', VERSION], {}, { PROJECT_ID: 'demo-proj' });
    const lines = gcloudShapes([
      ...first.commands,
      ...second.commands,
      ...older.commands,
      ...teardown.commands,
      ...verify.commands,
      ...rollback.commands,
      // The commands the script prints for the operator to run (resume, run now).
      ...printedCommands(first.stdout, rollback.stdout),
    ]);
    expect(lines.length).toBeGreaterThan(25);
    for (const expected of [
      'gcloud functions call',
      'gcloud scheduler jobs pause',
      'gcloud scheduler jobs resume',
      'gcloud run services update',
      'gcloud storage buckets get-iam-policy',
      '--condition-from-file=',
      'remove-iam-policy-binding',
      'gcloud auth print-access-token',
    ]) {
      expect(having(lines, expected).length, expected).toBeGreaterThan(0);
    }
    expect(await unparsedByGcloud(lines, real?.path ?? '')).toEqual([]);
  }, 120_000);
});

describe('shell scripts', () => {
  it('are shellcheck-clean', (ctx) => {
    const which = spawnSync('bash', ['-c', 'command -v shellcheck'], { encoding: 'utf8' });
    if (which.status !== 0)
      ctx.skip('shellcheck is not installed on this machine (CI installs it)');
    const result = spawnSync(
      'shellcheck',
      [join(ROOT, 'deploy.sh'), join(ROOT, '.ci/run'), join(STUBS, 'gcloud'), join(STUBS, 'bq')],
      { encoding: 'utf8' },
    );
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
