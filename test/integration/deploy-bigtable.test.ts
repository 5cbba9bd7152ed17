import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { BIGTABLE, createMappingTable } from '../helpers/bigtable-table.js';
import {
  argv,
  attemptVerify,
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

// deploy.sh with MAPPING_STORE=bigtable against the recording gcloud stub: the instance, its app
// profiles and the table, least-privilege grants on the table, the sync job in place of the
// snapshot mapping job; re-runs, teardown and verify. The one command gcloud cannot do (a
// family's GC rule) runs for real, with cbt against Google's Bigtable emulator.
const SETTINGS = {
  ...DEMO_SETTINGS,
  AEROSPIKE_HOSTS: '10.0.0.5:3000',
  MAPPING_STORE: 'bigtable',
};
const SA = (id: string) => `serviceAccount:profile-api-${id}@demo-proj.iam.gserviceaccount.com`;
const STATE = {
  instance: 'bigtable-instances--profile-api',
  cluster: 'bigtable-clusters--profile-api-c1',
  table: 'bigtable-instances-tables--identity-mapping',
  readProfile: 'bigtable-app-profiles--profile-api',
  syncProfile: 'bigtable-app-profiles--profile-api-sync',
  shardTopic: 'pubsub-topics--profile-api-sync-shards',
  deadTopic: 'pubsub-topics--profile-api-sync-shards-dead',
  deadSubscription: 'pubsub-subscriptions--profile-api-sync-shards-dead',
  pushSubscription: 'pubsub-subscriptions--profile-api-sync-shards-push',
  worker: 'functions--profile-api-sync-mapping-shard',
};
/** gcloud's describe of the push subscription (--format=json) as deploy.sh makes it. */
const PUSH_JSON = JSON.stringify({
  name: 'projects/demo-proj/subscriptions/profile-api-sync-shards-push',
  topic: 'projects/demo-proj/topics/profile-api-sync-shards',
  pushConfig: {
    pushEndpoint: 'https://profile-api-sync-mapping-shard-abc123-ew.a.run.app/',
    oidcToken: { serviceAccountEmail: 'profile-api-push@demo-proj.iam.gserviceaccount.com' },
  },
  ackDeadlineSeconds: 600,
  deadLetterPolicy: {
    deadLetterTopic: 'projects/demo-proj/topics/profile-api-sync-shards-dead',
    maxDeliveryAttempts: 100,
  },
});
/** What a deploy leaves of the shard dispatch, as the stub describes it. */
const DISPATCH = {
  [STATE.shardTopic]: '',
  [STATE.deadTopic]: '',
  [STATE.deadSubscription]: '',
  [STATE.pushSubscription]: PUSH_JSON,
  [STATE.worker]: '',
};
/** gcloud's describe of the table (--format=json) with the `l` family expiring after `days`. */
const tableJson = (days: number, families = ['l', 'm']) =>
  JSON.stringify({
    name: 'projects/demo-proj/instances/profile-api/tables/identity-mapping',
    columnFamilies: Object.fromEntries(
      families.map((f) => [
        f,
        {
          gcRule:
            f === 'l'
              ? { union: { rules: [{ maxAge: `${days * 86_400}s` }, { maxNumVersions: 2 }] } }
              : { maxNumVersions: 1 },
        },
      ]),
    ),
  });
/** gcloud's describe of the cluster (--format=json) as a first deploy makes it: one node. */
const CLUSTER_JSON = JSON.stringify({
  name: 'projects/demo-proj/instances/profile-api/clusters/profile-api-c1',
  location: 'projects/demo-proj/locations/europe-west1-b',
  serveNodes: 1,
  defaultStorageType: 'SSD',
});
/** gcloud's describe of an app profile (--format=json) routing to that cluster at `priority`. */
const appProfileJson = (priority: string) =>
  JSON.stringify({
    singleClusterRouting: { clusterId: 'profile-api-c1' },
    standardIsolation: { priority },
  });

const deployed = sandbox(SETTINGS).then((box) => {
  // MAPPING_IDS that would need 32Gi in memory: Bigtable mode does not hold the mapping.
  const first = box.run([], { MAPPING_IDS: '200000000' });
  // What gcloud now describes: each part as the first run made it.
  exist(box, {
    [STATE.cluster]: CLUSTER_JSON,
    [STATE.readProfile]: appProfileJson('PRIORITY_HIGH'),
    [STATE.syncProfile]: appProfileJson('PRIORITY_LOW'),
    [STATE.table]: tableJson(8),
  });
  const second = box.run([], { MAPPING_IDS: '200000000' });
  return { box, first, second };
});

describe('deploy.sh MAPPING_STORE=bigtable on a new project', () => {
  it('creates the instance with one cluster, an app profile per workload and the table with its GC rules', async () => {
    const { first } = await deployed;
    const bigtableApis = ['bigtable.googleapis.com', 'bigtableadmin.googleapis.com'];
    expect(
      having(first.commands, 'gcloud services enable').filter((c) =>
        bigtableApis.every((api) => argv(c).includes(api)),
      ),
    ).toHaveLength(1);
    const [instance] = having(first.commands, 'gcloud bigtable instances create profile-api ');
    expect(flag(instance ?? '', '--cluster-config')).toBe(
      'id=profile-api-c1,zone=europe-west1-b,nodes=1',
    );
    expect(flag(instance ?? '', '--cluster-storage-type')).toBe('ssd');
    const profiles = having(first.commands, 'gcloud bigtable app-profiles create').map((c) => [
      argv(c)[4],
      flag(c, '--route-to'),
      flag(c, '--priority'),
    ]);
    expect(profiles).toEqual([
      ['profile-api', 'profile-api-c1', 'PRIORITY_HIGH'],
      ['profile-api-sync', 'profile-api-c1', 'PRIORITY_LOW'],
    ]);
    const [table] = having(
      first.commands,
      'gcloud bigtable instances tables create identity-mapping',
    );
    expect(flag(table ?? '', '--instance')).toBe('profile-api');
    // MAPPING_WINDOW_DAYS 1 + MAPPING_LOOKBACK_DAYS 7.
    expect(flag(table ?? '', '--column-families')).toBe(
      'l:maxage=8d||maxversions=2,m:maxversions=1',
    );
    // The table is created before anything is granted on it.
    expect(first.commands.indexOf(table ?? '')).toBeLessThan(
      first.commands.findIndex((c) => c.includes('tables add-iam-policy-binding')),
    );
  });

  it('gives the sync job write access and the profile function read access to that table only', async () => {
    const { first } = await deployed;
    const tableGrants = having(
      first.commands,
      'gcloud bigtable instances tables add-iam-policy-binding',
    );
    expect(
      tableGrants.map((c) => [
        argv(c)[5],
        flag(c, '--instance'),
        flag(c, '--member'),
        flag(c, '--role'),
      ]),
    ).toEqual([
      ['identity-mapping', 'profile-api', SA('sync'), 'roles/bigtable.user'],
      ['identity-mapping', 'profile-api', SA('profile'), 'roles/bigtable.reader'],
    ]);
    // No Bigtable role anywhere else (project, instance).
    expect(
      first.commands.filter((c) => c.includes('roles/bigtable') && !c.includes(' tables ')),
    ).toEqual([]);
    expect(
      having(first.commands, 'gcloud iam service-accounts create profile-api-sync '),
    ).toHaveLength(1);
    expect(having(first.commands, 'service-accounts create profile-api-mapping ')).toEqual([]);
    expect(
      having(
        first.commands,
        'projects add-iam-policy-binding',
        SA('sync'),
        'roles/bigquery.jobUser',
      ),
    ).toHaveLength(1);
    expect(
      having(
        first.commands,
        'bq add-iam-policy-binding',
        SA('sync'),
        'roles/bigquery.dataViewer',
        'demo-proj:identity.user_mapping',
      ),
    ).toHaveLength(1);
    // No snapshot of the mapping to write: no grant on its folder.
    expect(
      having(first.commands, 'storage buckets add-iam-policy-binding').map((c) =>
        flag(c, '--member'),
      ),
    ).toEqual([SA('profile'), SA('catalog')]);
  });

  it('deploys the sync job like the other jobs, on its schedule, instead of the snapshot mapping job', async () => {
    const { first, box } = await deployed;
    const [sync] = having(first.commands, 'gcloud functions deploy profile-api-sync-mapping ');
    for (const expected of [
      '--entry-point=syncMapping',
      `--run-service-account=${SA('sync').slice('serviceAccount:'.length)}`,
      '--max-instances=1',
      '--concurrency=1',
      '--no-allow-unauthenticated',
    ]) {
      expect(sync).toContain(expected);
    }
    // Only looked up, to say whether an earlier deploy left one.
    expect(
      having(first.commands, 'profile-api-snapshot-mapping').filter(
        (c) => !c.includes(' describe '),
      ),
    ).toEqual([]);
    const [job] = having(
      first.commands,
      'gcloud scheduler jobs create http profile-api-sync-mapping',
    );
    expect(flag(job ?? '', '--schedule')).toBe('40 * * * *');
    expect(flag(job ?? '', '--message-body')).toBe('{}');
    expect(
      having(
        first.commands,
        'add-invoker-policy-binding profile-api-sync-mapping',
        'profile-api-scheduler@',
      ),
    ).toHaveLength(1);
    const env = envFile(join(box.work, 'sync.env.yaml'));
    expect(Object.fromEntries(env)).toMatchObject({
      BIGTABLE_PROJECT: 'demo-proj',
      BIGTABLE_INSTANCE: 'profile-api',
      BIGTABLE_TABLE: 'identity-mapping',
      BIGTABLE_APP_PROFILE: 'profile-api-sync',
      MAPPING_WINDOW_DAYS: '1',
      MAPPING_LOOKBACK_DAYS: '7',
      MAPPING_TABLE: 'demo-proj.identity.user_mapping',
      BIGQUERY_PROJECT: 'demo-proj',
      NODE_ENV: 'production',
    });
    expect(env.has('MAPPING_MAX_BYTES')).toBe(false);
    expect(first.stdout).toContain(
      `gcloud functions call profile-api-sync-mapping --gen2 --region=europe-west1 --project=demo-proj --data='{"resync":true}'`,
    );
    // It publishes the shards to the topic and drains the dead letters.
    expect(Object.fromEntries(env)).toMatchObject({
      SYNC_TOPIC: 'projects/demo-proj/topics/profile-api-sync-shards',
      SYNC_DEAD_LETTER_SUBSCRIPTION:
        'projects/demo-proj/subscriptions/profile-api-sync-shards-dead',
    });
  });

  it('sizes the profile function without the mapping and points it at the table', async () => {
    const { first, box } = await deployed;
    const [profile] = having(first.commands, 'gcloud functions deploy profile-api ');
    expect(flag(profile ?? '', '--memory')).toBe('1Gi');
    expect(flag(profile ?? '', '--cpu')).toBe('1');
    const env = envFile(join(box.work, 'profile.env.yaml'));
    expect(Object.fromEntries(env)).toMatchObject({
      MAPPING_STORE: 'bigtable',
      BIGTABLE_INSTANCE: 'profile-api',
      BIGTABLE_TABLE: 'identity-mapping',
      BIGTABLE_APP_PROFILE: 'profile-api',
      MAPPING_WINDOW_DAYS: '1',
    });
    // The lookback is the sync job's alone: the profile function reads the window only.
    expect(env.has('MAPPING_LOOKBACK_DAYS')).toBe(false);
    expect(env.has('MAPPING_MAX_BYTES')).toBe(false);
  });
});

describe('deploy.sh MAPPING_STORE=bigtable again', () => {
  it('creates nothing and changes nothing in Bigtable', async () => {
    const { second } = await deployed;
    expect(
      second.commands.filter(
        // (Enabling a service agent that exists is a no-op gcloud still runs.)
        (c) =>
          / (create|rm) /.test(c) && !c.includes(' describe ') && !c.includes('identity create'),
      ),
    ).toEqual([]);
    expect(
      second.commands.filter((c) => c.startsWith('gcloud bigtable') && !c.includes(' describe ')),
    ).toEqual(having(second.commands, 'tables add-iam-policy-binding'));
  });

  it('resizes the cluster and fixes an app profile that drifted', async () => {
    const box = await sandbox(SETTINGS);
    exist(box, {
      [STATE.instance]: '',
      [STATE.cluster]: CLUSTER_JSON,
      [STATE.readProfile]: appProfileJson('PRIORITY_HIGH'),
      [STATE.syncProfile]: appProfileJson('PRIORITY_HIGH'),
      [STATE.table]: tableJson(8),
    });
    const { commands, stderr } = box.run([], { BIGTABLE_MAX_NODES: '4' });
    const changes = commands.filter(
      (c) =>
        c.startsWith('gcloud bigtable') && !c.includes(' describe ') && !c.includes('iam-policy'),
    );
    expect(changes.map(argv)).toEqual([
      [
        'gcloud',
        'bigtable',
        'clusters',
        'update',
        'profile-api-c1',
        '--instance=profile-api',
        '--project=demo-proj',
        '--autoscaling-min-nodes=1',
        '--autoscaling-max-nodes=4',
        '--autoscaling-cpu-target=60',
      ],
      [
        'gcloud',
        'bigtable',
        'app-profiles',
        'update',
        'profile-api-sync',
        '--instance=profile-api',
        '--project=demo-proj',
        '--route-to=profile-api-c1',
        '--priority=PRIORITY_LOW',
        '--force',
      ],
    ]);
    expect(stderr).not.toContain('warning');
  });

  it('refuses to reuse an instance without the cluster it should route to', async () => {
    const box = await sandbox(SETTINGS);
    exist(box, { [STATE.instance]: '' });
    const result = box.attempt([]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('has no cluster profile-api-c1: set BIGTABLE_CLUSTER');
    expect(having(result.commands, 'functions deploy')).toEqual([]);
  });

  it('says which snapshot mapping job an earlier deploy left running, and deletes nothing', async () => {
    const box = await sandbox(SETTINGS);
    exist(box, {
      'functions--profile-api-snapshot-mapping': '',
      'scheduler--profile-api-snapshot-mapping': '',
    });
    const { stderr, commands } = box.run();
    expect(stderr).toContain(
      'profile-api-snapshot-mapping is left from a MAPPING_STORE=snapshot deploy',
    );
    expect(stderr).toContain(
      '  gcloud scheduler jobs delete profile-api-snapshot-mapping --project=demo-proj --location=europe-west1 --quiet\n',
    );
    expect(stderr).toContain(
      '  gcloud functions delete profile-api-snapshot-mapping --gen2 --project=demo-proj --region=europe-west1 --quiet\n',
    );
    expect(having(commands, ' delete ')).toEqual([]);
  });
});

describe('deploy.sh MAPPING_STORE=bigtable when the window changes', () => {
  it("updates the l family's GC rule with cbt (run for real, on Google's Bigtable emulator)", async (ctx) => {
    if (spawnSync('bash', ['-c', 'command -v cbt']).status !== 0) {
      ctx.skip(
        'cbt is not installed on this machine (google-cloud-cli-cbt): GC rule update not run',
      );
    }
    const emulator = await BigtableEmulator.start();
    try {
      process.env.BIGTABLE_EMULATOR_HOST = emulator.host;
      // The table as a first deploy made it: window 1 + look-back 7 days.
      const table = await createMappingTable('identity-mapping', 1, 7);
      const box = await sandbox({ ...SETTINGS, BIGTABLE_PROJECT: BIGTABLE.projectId });
      exist(box, {
        [STATE.instance]: '',
        [STATE.cluster]: CLUSTER_JSON,
        [STATE.table]: tableJson(8),
      });
      const result = box.run([], {
        MAPPING_WINDOW_DAYS: '3',
        BIGTABLE_EMULATOR_HOST: emulator.host,
      });
      expect(result.stdout).toContain(
        '+ cbt -project=local-project -instance=profile-api setgcpolicy identity-mapping l maxage=10d or maxversions=2\n',
      );
      const [families] = await table.getFamilies();
      const rules = new Map(families.map((f) => [f.id, JSON.stringify(f.metadata?.gcRule)]));
      const links = JSON.parse(rules.get('l') ?? '{}') as {
        union?: {
          rules?: Array<{ maxAge?: { seconds?: string | number }; maxNumVersions?: number }>;
        };
      };
      expect(
        links.union?.rules
          ?.map((r) => r.maxAge?.seconds ?? `versions ${r.maxNumVersions}`)
          .map(String),
      ).toEqual(expect.arrayContaining(['864000', 'versions 2']));
      // The meta family is untouched.
      expect(rules.get('m')).toContain('"maxNumVersions":1');
      // The functions read the same window.
      expect(envFile(join(box.work, 'profile.env.yaml')).get('MAPPING_WINDOW_DAYS')).toBe('3');
    } finally {
      delete process.env.BIGTABLE_EMULATOR_HOST;
      await emulator.stop();
    }
  }, 60_000);
});

describe('deploy.sh teardown with MAPPING_STORE=bigtable', () => {
  it('removes the sync job always, and with TEARDOWN_ALL the table, its app profiles, then the instance', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    const plain = box.run(['teardown']);
    expect(
      having(plain.commands, 'gcloud scheduler jobs delete profile-api-sync-mapping'),
    ).toHaveLength(1);
    expect(
      having(plain.commands, 'gcloud functions delete profile-api-sync-mapping '),
    ).toHaveLength(1);
    // The shard dispatch: its subscriptions, then its topics, and the worker function.
    expect(
      plain.commands
        .filter((c) => c.startsWith('gcloud pubsub') && c.includes(' delete '))
        .map((c) => argv(c).slice(1, 5).join(' ')),
    ).toEqual([
      'pubsub subscriptions delete profile-api-sync-shards-push',
      'pubsub subscriptions delete profile-api-sync-shards-dead',
      'pubsub topics delete profile-api-sync-shards',
      'pubsub topics delete profile-api-sync-shards-dead',
    ]);
    expect(
      having(plain.commands, 'gcloud functions delete profile-api-sync-mapping-shard '),
    ).toHaveLength(1);
    expect(having(plain.commands, 'gcloud bigtable', ' delete ')).toEqual([]);

    const all = box.run(['teardown'], { TEARDOWN_ALL: '1' });
    const deletes = all.commands.filter(
      (c) => c.startsWith('gcloud bigtable') && c.includes(' delete '),
    );
    expect(deletes.map((c) => argv(c).slice(1, 5).join(' '))).toEqual([
      'bigtable instances tables delete',
      'bigtable app-profiles delete profile-api',
      'bigtable app-profiles delete profile-api-sync',
      'bigtable instances delete profile-api',
    ]);
    // Only after checking that no other table lives in the instance.
    const list = all.commands.findIndex((c) => c.includes('bigtable instances tables list'));
    expect(list).toBeGreaterThan(all.commands.indexOf(deletes[2] ?? ''));
    expect(list).toBeLessThan(all.commands.indexOf(deletes[3] ?? ''));
    expect(having(all.commands, 'service-accounts delete profile-api-sync@')).toHaveLength(1);
    expect(having(all.commands, 'service-accounts delete profile-api-push@')).toHaveLength(1);
  });
});

describe('deploy.sh verify with MAPPING_STORE=bigtable', () => {
  const only = {
    PROJECT_ID: 'demo-proj',
    MAPPING_TABLE: SETTINGS.MAPPING_TABLE,
    MAPPING_STORE: 'bigtable',
  };
  const verify = async (files: Record<string, string | undefined>) => {
    const box = await sandbox(only);
    exist(
      box,
      Object.fromEntries(
        Object.entries(files).filter((e): e is [string, string] => e[1] !== undefined),
      ),
    );
    return attemptVerify(box);
  };

  it('checks the table and its families, and never calls the sync job (it has no dry run)', async () => {
    const result = await verify({ [STATE.table]: tableJson(8), ...DISPATCH });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(
      having(
        result.commands,
        'gcloud bigtable instances tables describe identity-mapping',
        '--format=json',
      ),
    ).toHaveLength(1);
    expect(having(result.commands, 'functions call')).toEqual([]);
    expect(result.stdout).toContain(
      'Verified: Bigtable table identity-mapping has its column families; the shard dispatch (profile-api-sync-shards, profile-api-sync-shards-push to profile-api-sync-mapping-shard, profile-api-sync-shards-dead) is in place.',
    );
  });

  it('fails on a missing family, and on a missing table', async () => {
    const noMeta = await verify({ [STATE.table]: tableJson(8, ['l']) });
    expect(noMeta.code).toBe(1);
    expect(noMeta.stderr).toContain('lacks column families: m');
    const none = await verify({});
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('Bigtable table identity-mapping does not exist');
  });

  it('fails when the shard dispatch is missing, or its push subscription is not as deployed', async () => {
    const noWorker = await verify({
      [STATE.table]: tableJson(8),
      ...DISPATCH,
      [STATE.worker]: undefined,
    });
    expect(noWorker.code).toBe(1);
    expect(noWorker.stderr).toContain(
      'the shard worker profile-api-sync-mapping-shard is not deployed',
    );
    const push = JSON.parse(PUSH_JSON) as Record<string, unknown>;
    delete push.deadLetterPolicy;
    const noDeadLetters = await verify({
      [STATE.table]: tableJson(8),
      ...DISPATCH,
      [STATE.pushSubscription]: JSON.stringify(push),
    });
    expect(noDeadLetters.code).toBe(1);
    expect(noDeadLetters.stderr).toContain(
      'it has no dead-letter topic profile-api-sync-shards-dead',
    );
  });

  it('warns when the GC rule is not the settings', async () => {
    const result = await verify({ [STATE.table]: tableJson(30), ...DISPATCH });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('the GC rule of l is not max age 8d or 2 versions');
  });
});

describe('deploy.sh settings with MAPPING_STORE=bigtable', () => {
  it.each([
    [{ MAPPING_SYNC_METHOD: 'batch' }, 'MAPPING_SYNC_METHOD must be mutations'],
    [{ MAPPING_SYNC_METHOD: 'export' }, 'export is not built'],
    [
      { BIGTABLE_NODES: '3', BIGTABLE_MAX_NODES: '2' },
      'BIGTABLE_MAX_NODES (2) is below BIGTABLE_NODES (3)',
    ],
    [{ BIGTABLE_STORAGE_TYPE: 'NVME' }, 'BIGTABLE_STORAGE_TYPE must be SSD or HDD'],
    [{ BIGTABLE_SYNC_APP_PROFILE: 'profile-api' }, 'must differ'],
    [{ MAPPING_WINDOW_DAYS: '0' }, 'MAPPING_WINDOW_DAYS must be a whole number above 0'],
    [{ MAPPING_STORE: 'memory' }, 'MAPPING_STORE must be snapshot or bigtable'],
  ])('refuses %j before touching anything', async (env, message) => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt([], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.commands).toEqual([]);
  });

  it('autoscales a new cluster between BIGTABLE_NODES and BIGTABLE_MAX_NODES', async () => {
    const box = await sandbox(SETTINGS);
    const { stdout } = box.run([], {
      DRY_RUN: '1',
      BIGTABLE_NODES: '2',
      BIGTABLE_MAX_NODES: '6',
      BIGTABLE_STORAGE_TYPE: 'HDD',
    });
    const [create] = having(planned(stdout), 'gcloud bigtable instances create');
    expect(flag(create ?? '', '--cluster-config')).toBe(
      'id=profile-api-c1,zone=europe-west1-b,autoscaling-min-nodes=2,autoscaling-max-nodes=6,autoscaling-cpu-target=60',
    );
    expect(flag(create ?? '', '--cluster-storage-type')).toBe('hdd');
  });

  it('refuses to roll the mapping back (there are no snapshots) and says how to resync', async () => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt(['rollback', 'mapping', '20261130T043000Z-1a2b3c4d']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('MAPPING_STORE=bigtable keeps no mapping snapshots');
    expect(result.stderr).toContain(
      `gcloud functions call profile-api-sync-mapping --gen2 --region=europe-west1 --project=demo-proj --data='{"resync":true}'`,
    );
    expect(result.commands).toEqual([]);
  });

  it('documents every setting in --help', async () => {
    const box = await sandbox(SETTINGS);
    const { stdout } = box.run(['--help']);
    for (const name of [
      'MAPPING_STORE',
      'BIGTABLE_PROJECT',
      'BIGTABLE_INSTANCE',
      'BIGTABLE_CLUSTER',
      'BIGTABLE_ZONE',
      'BIGTABLE_NODES',
      'BIGTABLE_MAX_NODES',
      'BIGTABLE_STORAGE_TYPE',
      'BIGTABLE_TABLE',
      'BIGTABLE_APP_PROFILE',
      'BIGTABLE_SYNC_APP_PROFILE',
      'MAPPING_SYNC_METHOD',
      'SYNC_SCHEDULE',
      'SYNC_MAX_WORKERS',
      'SYNC_MAX_DELIVERY_ATTEMPTS',
    ]) {
      expect(stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });
});

describe('the Bigtable gcloud command lines', () => {
  it('all parse with the real gcloud', async (ctx) => {
    const real = realGcloud();
    if (!real) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const { first, second } = await deployed;
    const drift = await sandbox(SETTINGS);
    exist(drift, {
      [STATE.instance]: '',
      [STATE.cluster]: JSON.stringify({ serveNodes: 1 }),
      [STATE.syncProfile]: JSON.stringify({ singleClusterRouting: { clusterId: 'other' } }),
      'functions--profile-api-snapshot-mapping': '',
      'scheduler--profile-api-snapshot-mapping': '',
    });
    const resized = drift.run([], { BIGTABLE_NODES: '3' });
    const teardown = drift.run(['teardown'], { TEARDOWN_ALL: '1' });
    const verifyBox = await sandbox(SETTINGS);
    exist(verifyBox, { [STATE.table]: tableJson(8), ...DISPATCH });
    const verify = await attemptVerify(verifyBox);
    const all = [
      ...first.commands,
      ...second.commands,
      ...resized.commands,
      ...teardown.commands,
      ...verify.commands,
      ...printedCommands(first.stdout, resized.stderr),
    ];
    // Bigtable's own lines, and those that changed with it (grants, the sync job, notes).
    const lines = gcloudShapes(all).filter((c) =>
      /bigtable|sync|pubsub|push|profile-api-snapshot-mapping/.test(c),
    );
    for (const expected of [
      'gcloud bigtable instances create',
      'gcloud bigtable app-profiles create',
      'gcloud bigtable app-profiles update',
      'gcloud bigtable clusters update',
      'gcloud bigtable instances tables create',
      'gcloud bigtable instances tables add-iam-policy-binding',
      'gcloud bigtable instances tables list',
      'gcloud bigtable instances tables delete',
      'gcloud bigtable app-profiles delete',
      'gcloud bigtable instances delete',
      'gcloud functions deploy profile-api-sync-mapping',
      'gcloud scheduler jobs create http profile-api-sync-mapping',
      'gcloud functions call profile-api-sync-mapping',
      'gcloud functions delete profile-api-snapshot-mapping',
      'gcloud pubsub topics create profile-api-sync-shards',
      'gcloud pubsub subscriptions create profile-api-sync-shards-dead',
      'gcloud pubsub subscriptions create profile-api-sync-shards-push',
      'gcloud pubsub subscriptions update profile-api-sync-shards-push',
      'gcloud pubsub topics add-iam-policy-binding',
      'gcloud pubsub subscriptions add-iam-policy-binding',
      'gcloud iam service-accounts add-iam-policy-binding profile-api-push@',
      'gcloud functions deploy profile-api-sync-mapping-shard',
      'gcloud functions add-invoker-policy-binding profile-api-sync-mapping-shard',
      'gcloud beta services identity create --service=pubsub.googleapis.com',
      'gcloud pubsub subscriptions delete profile-api-sync-shards-push',
      'gcloud pubsub topics delete profile-api-sync-shards-dead',
    ]) {
      expect(having(lines, expected).length, expected).toBeGreaterThan(0);
    }
    expect(await unparsedByGcloud(lines, real?.path ?? '')).toEqual([]);
  }, 180_000);
});

describe('deploy.sh MAPPING_STORE=bigtable with several REGIONS', () => {
  it('warns, per region away from the cluster, what each lookup costs', async () => {
    const box = await sandbox({
      ...SETTINGS,
      EDGE: 'lb',
      DOMAIN: 'api.example.com',
      API_KEYS_SECRET: 'profile-api-keys',
      REGIONS: 'europe-west1,europe-west4,us-central1',
    });
    const result = box.run([], { DRY_RUN: '1' });
    expect(result.stderr).not.toContain('profile function in europe-west1 reads the mapping');
    expect(result.stderr).toContain(
      'the profile function in europe-west4 reads the mapping from the cluster in europe-west1-b: every request pays a round trip between europe-west4 and europe-west1, typically 5 to 70 ms within a continent',
    );
    expect(result.stderr).toContain(
      'the profile function in us-central1 reads the mapping from the cluster in europe-west1-b: every request pays a round trip between continents, typically 80 ms or more',
    );
  });
});
