import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/temp-dir.js';

// deploy.sh against a stub gcloud/bq that records every call and remembers what exists.
const ROOT = new URL('../..', import.meta.url).pathname;
const STUBS = join(ROOT, 'test/helpers/stub-cli');
const MONGO_URI = 'mongodb://profile:s3cret@10.0.0.9:27017/adtech';
const ID_TYPES_JSON = JSON.stringify([
  { name: 'email', code: 'e1', pattern: '^[0-9a-f]{64}$', normalise: 'lower' },
]);
const ENV = {
  PROJECT_ID: 'demo-proj',
  AEROSPIKE_HOSTS: '10.0.0.5:3000,10.0.0.6:3000',
  VPC_CONNECTOR: 'aerospike-connector',
  MONGO_DATABASE: 'adtech',
  MAPPING_TABLE: 'demo-proj.identity.user_mapping',
  MONGO_URI,
  AEROSPIKE_USER: 'profile_api',
  AEROSPIKE_PASSWORD_SECRET: 'aerospike-password',
  LINKED_IDS_MAX: '25',
  ID_TYPES_JSON,
};
const SA = (id: string) => `profile-api-${id}@demo-proj.iam.gserviceaccount.com`;

interface Sandbox {
  readonly work: string;
  readonly state: string;
  readonly log: string;
  run(
    args?: string[],
    env?: Record<string, string>,
  ): { code: number; stdout: string; commands: string[] };
}

async function sandbox(): Promise<Sandbox> {
  const dir = await makeTempDir();
  const state = join(dir, 'state');
  mkdirSync(state);
  const log = join(dir, 'calls.log');
  return {
    work: join(dir, 'work'),
    state,
    log,
    run(args = [], env = {}) {
      writeFileSync(log, '');
      const result = spawnSync('bash', [join(ROOT, 'deploy.sh'), ...args], {
        cwd: ROOT,
        encoding: 'utf8',
        env: {
          ...process.env,
          PATH: `${STUBS}${delimiter}${process.env.PATH}`,
          STUB_LOG: log,
          STUB_STATE: state,
          DEPLOY_WORK_DIR: join(dir, 'work'),
          ...ENV,
          ...env,
        },
      });
      if (result.status !== 0) throw new Error(`deploy.sh failed:\n${result.stderr}`);
      const commands = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      return { code: result.status, stdout: result.stdout, commands };
    },
  };
}

const having = (commands: string[], ...parts: string[]) =>
  commands.filter((c) => parts.every((p) => c.includes(p)));

/** Parses the --env-vars-file YAML deploy.sh writes (KEY: "JSON string" lines). */
function envFile(path: string): Map<string, string> {
  return new Map(
    readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const colon = line.indexOf(': ');
        return [line.slice(0, colon), JSON.parse(line.slice(colon + 2)) as string];
      }),
  );
}

const firstDeploy = sandbox().then((box) => ({ box, first: box.run(), second: box.run() }));

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
    expect(
      bucketGrants.map((c) => /member=serviceAccount:([^ ]+) --role=([^ ]+)/.exec(c)?.slice(1)),
    ).toEqual([
      [SA('profile'), 'roles/storage.objectViewer'],
      [SA('catalog'), 'roles/storage.objectUser'],
      [SA('mapping'), 'roles/storage.objectUser'],
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
      '--memory=2Gi',
      '--cpu=1',
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
    expect(envFile(join(box.work, 'mapping.env.yaml')).get('MAPPING_TABLE')).toBe(
      'demo-proj.identity.user_mapping',
    );
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
    const realPath = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== STUBS);
    const gcloud = realPath.map((d) => join(d, 'gcloud')).find((p) => existsSync(p));
    if (!gcloud) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const { first, second } = await firstDeploy;
    const box = await sandbox();
    box.run();
    const teardown = box.run(['teardown'], { TEARDOWN_ALL: '1' });
    const lines = [
      ...new Set([...first.commands, ...second.commands, ...teardown.commands]),
    ].filter((c) => c.startsWith('gcloud ') && !c.includes(' describe '));
    expect(lines.length).toBeGreaterThan(25);
    const config = await makeTempDir();
    const env = {
      PATH: realPath.join(delimiter),
      CLOUDSDK_CONFIG: config,
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    };
    const check = (line: string) =>
      new Promise<string | undefined>((resolve) => {
        const child = execFile(
          'bash',
          ['-c', line],
          { encoding: 'utf8', env },
          (error, _out, stderr) => {
            const code = error ? error.code : 0;
            const parsed =
              code === 1 && stderr.includes('You do not currently have an active account selected');
            resolve(
              parsed
                ? undefined
                : `${line}\n  -> exit ${code}: ${stderr.split('\n').slice(0, 3).join(' | ')}`,
            );
          },
        );
        child.stdin?.end();
      });
    // Two at a time: each gcloud start costs most of a second of CPU.
    const failures: string[] = [];
    const queue = [...lines];
    await Promise.all(
      [0, 1].map(async () => {
        for (let line = queue.shift(); line !== undefined; line = queue.shift()) {
          const failure = await check(line);
          if (failure) failures.push(failure);
        }
      }),
    );
    expect(failures).toEqual([]);
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
