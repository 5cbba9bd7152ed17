import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  argv,
  attemptVerify,
  DEMO_SETTINGS,
  envFile,
  exist,
  fakeDist,
  flag,
  gcloudShapes,
  having,
  importSchemaError,
  planned,
  printedCommands,
  realGcloud,
  sandbox,
  unparsedByGcloud,
} from '../helpers/stub-cli/deploy-sandbox.js';

// deploy.sh EDGE=lb (issue 13) against the recording gcloud stub: a global external Application
// Load Balancer with Cloud Armor in front of the profile function in two regions, its re-run
// and teardown; verify through a local stand-in for the load balancer.
const SETTINGS = {
  ...DEMO_SETTINGS,
  AEROSPIKE_HOSTS: '10.0.0.5:3000',
  AEROSPIKE_HOSTS_EUROPE_WEST1: '10.1.0.5:3000,10.1.0.6:3000',
  EDGE: 'lb',
  DOMAIN: 'api.example.com',
  REGIONS: 'europe-west1,us-central1',
  API_KEYS_SECRET: 'profile-api-keys',
};
const API = 'https://www.googleapis.com/compute/v1/projects/demo-proj/global';
const COMPUTE = (kind: string, verb: string) => `gcloud compute ${kind} ${verb} `;

const deployed = sandbox(SETTINGS).then((box) => {
  const first = box.run();
  const second = box.run();
  return { box, first, second };
});

describe('deploy.sh EDGE=lb on a new project, two regions', () => {
  it('deploys the profile function in each region, reachable only through the load balancer', async () => {
    const { first, box } = await deployed;
    const profiles = having(first.commands, 'gcloud functions deploy profile-api ');
    expect(profiles.map((c) => flag(c, '--region'))).toEqual(['europe-west1', 'us-central1']);
    for (const profile of profiles) {
      expect(flag(profile, '--ingress-settings')).toBe('internal-and-gclb');
      // The load balancer carries no Google identity: the API key is the check.
      expect(argv(profile)).toContain('--allow-unauthenticated');
      expect(flag(profile, '--set-secrets')).toBe('API_KEYS=profile-api-keys:latest');
    }
    // The jobs still run once, in REGION.
    expect(
      having(first.commands, 'gcloud functions deploy profile-api-snapshot').map((c) =>
        flag(c, '--region'),
      ),
    ).toEqual(['europe-west1', 'europe-west1']);
    const seeds = (file: string) => envFile(join(box.work, file)).get('AEROSPIKE_HOSTS');
    expect(seeds('profile.env.yaml')).toBe('10.1.0.5:3000,10.1.0.6:3000');
    expect(seeds('profile.us-central1.env.yaml')).toBe('10.0.0.5:3000');
    expect(first.stderr).toContain(
      'warning: us-central1 has no Aerospike seeds of its own (AEROSPIKE_HOSTS_US_CENTRAL1)',
    );
    expect(first.stderr).not.toContain('europe-west1 has no Aerospike seeds');
  });

  it('builds the load balancer: address, certificate, a serverless NEG per region, backends, HTTPS and a redirect', async () => {
    const { first } = await deployed;
    const c = first.commands;
    const [address] = having(c, COMPUTE('addresses', 'create'), 'profile-api-ip');
    expect(address).toContain('--global');
    const [cert] = having(c, COMPUTE('ssl-certificates', 'create'));
    expect(flag(cert ?? '', '--domains')).toBe('api.example.com');
    const negs = having(c, COMPUTE('network-endpoint-groups', 'create'));
    expect(
      negs.map((n) => [argv(n)[4], flag(n, '--region'), flag(n, '--cloud-run-service')]),
    ).toEqual([
      ['profile-api-neg-europe-west1', 'europe-west1', 'profile-api'],
      ['profile-api-neg-us-central1', 'us-central1', 'profile-api'],
    ]);
    for (const neg of negs) expect(flag(neg, '--network-endpoint-type')).toBe('serverless');
    const backends = having(c, COMPUTE('backend-services', 'add-backend')).map((b) => [
      argv(b)[4],
      flag(b, '--network-endpoint-group'),
    ]);
    expect(backends).toEqual([
      ['profile-api-backend', 'profile-api-neg-europe-west1'],
      ['profile-api-backend', 'profile-api-neg-us-central1'],
      ['profile-api-backend-europe-west1', 'profile-api-neg-europe-west1'],
      ['profile-api-backend-us-central1', 'profile-api-neg-us-central1'],
    ]);
    for (const backend of having(c, COMPUTE('backend-services', 'create'))) {
      expect(flag(backend, '--load-balancing-scheme')).toBe('EXTERNAL_MANAGED');
    }
    const [https] = having(c, COMPUTE('target-https-proxies', 'create'));
    expect(flag(https ?? '', '--url-map')).toBe('profile-api-urlmap');
    expect(flag(https ?? '', '--ssl-certificates')).toBe(argv(cert ?? '')[4]);
    expect(flag(https ?? '', '--ssl-policy')).toBe('profile-api-tls');
    const [tls] = having(c, COMPUTE('ssl-policies', 'create'));
    expect(flag(tls ?? '', '--min-tls-version')).toBe('1.2');
    const [http] = having(c, COMPUTE('target-http-proxies', 'create'));
    expect(flag(http ?? '', '--url-map')).toBe('profile-api-http-redirect');
    const rules = having(c, COMPUTE('forwarding-rules', 'create')).map((r) => [
      flag(r, '--address'),
      flag(r, '--ports'),
      flag(r, '--target-https-proxy') ?? flag(r, '--target-http-proxy'),
      flag(r, '--load-balancing-scheme'),
    ]);
    expect(rules).toEqual([
      ['profile-api-ip', '443', 'profile-api-https-proxy', 'EXTERNAL_MANAGED'],
      ['profile-api-ip', '80', 'profile-api-http-proxy', 'EXTERNAL_MANAGED'],
    ]);
    expect(first.stdout).toContain("Point api.example.com's DNS A record at 203.0.113.10");
    expect(first.stdout).toContain(
      `curl -H "x-api-key: $API_KEY" 'https://api.example.com/health'`,
    );
  });

  it('routes to the nearest region, /health to a named one, and plain HTTP to HTTPS', async () => {
    const { first, box } = await deployed;
    const [main, redirect] = having(first.commands, COMPUTE('url-maps', 'import'));
    const urlMap = readFileSync(flag(main ?? '', '--source') ?? '', 'utf8');
    expect(urlMap).toContain(`defaultService: ${API}/backendServices/profile-api-backend\n`);
    for (const region of ['europe-west1', 'us-central1']) {
      expect(urlMap).toContain(
        [
          '    - fullPathMatch: /health',
          '      headerMatches:',
          '      - headerName: x-profile-api-region',
          `        exactMatch: ${region}`,
          `    service: ${API}/backendServices/profile-api-backend-${region}`,
        ].join('\n'),
      );
    }
    expect(readFileSync(join(box.work, 'http-redirect.yaml'), 'utf8')).toContain(
      'httpsRedirect: true',
    );
    expect(flag(redirect ?? '', '--source')).toBe(join(box.work, 'http-redirect.yaml'));
  });

  it('puts Cloud Armor on every backend: a per-client rate limit answered 429, nothing else denied', async () => {
    const { first } = await deployed;
    const [limit] = having(first.commands, 'security-policies rules create 1000');
    expect(
      Object.fromEntries(
        argv(limit ?? '')
          .filter((w) => w.startsWith('--'))
          .map((w) => w.split('=')),
      ),
    ).toMatchObject({
      '--security-policy': 'profile-api-edge',
      '--action': 'throttle',
      '--src-ip-ranges': '*',
      '--rate-limit-threshold-count': '6000',
      '--rate-limit-threshold-interval-sec': '60',
      '--conform-action': 'allow',
      '--exceed-action': 'deny-429',
      '--enforce-on-key': 'ip',
    });
    const [fallback] = having(first.commands, 'security-policies rules update 2147483647');
    expect(flag(fallback ?? '', '--action')).toBe('allow');
    const attached = having(first.commands, COMPUTE('backend-services', 'update')).map((u) => [
      argv(u)[4],
      flag(u, '--security-policy'),
      flag(u, '--iap'),
    ]);
    expect(attached).toEqual(
      [
        'profile-api-backend',
        'profile-api-backend-europe-west1',
        'profile-api-backend-us-central1',
      ].map((b) => [b, 'profile-api-edge', 'disabled']),
    );
  });

  it("answers the edge's own 403 and 429 with our JSON error body", async () => {
    const { first, box } = await deployed;
    const urlMap = readFileSync(join(box.work, 'urlmap.yaml'), 'utf8');
    expect(urlMap).toContain(`  errorService: ${API}/backendBuckets/profile-api-edge-errors\n`);
    for (const code of ['403', '429']) {
      expect(urlMap).toContain(
        `  - matchResponseCodes: ['${code}']\n    path: /edge-errors/${code}.json\n    overrideResponseCode: ${code}\n`,
      );
      const body = JSON.parse(readFileSync(join(box.work, `edge-errors/${code}.json`), 'utf8'));
      expect(body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    }
    const [upload] = having(first.commands, 'gcloud storage cp');
    expect(upload).toContain('gs://demo-proj-profile-api-edge-errors/edge-errors/');
    expect(flag(upload ?? '', '--content-type')).toBe('application/json');
    // That bucket is public (the load balancer reads it as anyone); the snapshots' is not.
    expect(
      having(first.commands, 'add-iam-policy-binding', '--member=allUsers').map((g) => argv(g)[4]),
    ).toEqual(['gs://demo-proj-profile-api-edge-errors']);
    const [backendBucket] = having(first.commands, COMPUTE('backend-buckets', 'create'));
    expect(flag(backendBucket ?? '', '--gcs-bucket-name')).toBe(
      'demo-proj-profile-api-edge-errors',
    );
  });

  it('keeps the snapshots in the multi-region of REGION and says which regions read across continents', async () => {
    const { first } = await deployed;
    const [bucket] = having(
      first.commands,
      'gcloud storage buckets create gs://demo-proj-profile-api-snapshots',
    );
    expect(flag(bucket ?? '', '--location')).toBe('EU');
    expect(first.stderr).toContain('warning: us-central1 outside EU');
  });
});

describe('deploy.sh EDGE=lb again', () => {
  it('creates nothing and adds no backend twice', async () => {
    const { second } = await deployed;
    expect(
      second.commands.filter(
        (c) => / (create|rm|add-backend) /.test(c) && !c.includes(' describe '),
      ),
    ).toEqual([]);
    // What carries settings is brought to them again.
    expect(having(second.commands, COMPUTE('url-maps', 'import'))).toHaveLength(2);
    expect(having(second.commands, COMPUTE('target-https-proxies', 'update'))).toHaveLength(1);
    expect(having(second.commands, 'security-policies rules update 1000')).toHaveLength(1);
  });
});

describe('deploy.sh EDGE=lb teardown', () => {
  it('removes the front door in dependency order, then the functions of every region', async () => {
    const box = await sandbox(SETTINGS);
    box.run();
    const { commands } = box.run(['teardown']);
    const deletes = commands.filter((c) => c.includes(' delete ') || c.includes(' rm '));
    const at = (part: string) => {
      const i = deletes.findIndex((d) => d.includes(part));
      expect(i, part).toBeGreaterThanOrEqual(0);
      return i;
    };
    // Each part goes after everything that refers to it.
    const precedes = (first: string, then: string) =>
      expect(at(first), `${first} < ${then}`).toBeLessThan(at(then));
    precedes('forwarding-rules delete profile-api-https ', 'target-https-proxies delete');
    precedes('forwarding-rules delete profile-api-http ', 'target-http-proxies delete');
    precedes('target-https-proxies delete', 'url-maps delete profile-api-urlmap');
    precedes('target-http-proxies delete', 'url-maps delete profile-api-http-redirect');
    precedes('target-https-proxies delete', 'ssl-certificates delete');
    precedes('target-https-proxies delete', 'ssl-policies delete');
    precedes('url-maps delete profile-api-urlmap', 'backend-services delete profile-api-backend ');
    precedes('url-maps delete profile-api-urlmap', 'backend-buckets delete');
    precedes(
      'backend-services delete profile-api-backend-us-central1',
      'network-endpoint-groups delete profile-api-neg-us-central1',
    );
    precedes(
      'backend-services delete profile-api-backend-europe-west1',
      'security-policies delete',
    );
    precedes('forwarding-rules delete profile-api-http ', 'addresses delete');
    precedes(
      'backend-buckets delete',
      'storage rm --recursive gs://demo-proj-profile-api-edge-errors',
    );
    precedes('network-endpoint-groups delete', 'functions delete profile-api ');
    expect(
      having(deletes, 'functions delete profile-api ').map((d) => flag(d, '--region')),
    ).toEqual(['europe-west1', 'us-central1']);
    // The snapshots stay without TEARDOWN_ALL.
    expect(having(deletes, 'gs://demo-proj-profile-api-snapshots')).toEqual([]);
  });

  it('without EDGE=lb, says a load balancer is left rather than leave it silently', async () => {
    const box = await sandbox(SETTINGS);
    exist(box, { 'compute-forwarding-rules--profile-api-https': '' });
    const result = box.run(['teardown'], { EDGE: '', REGIONS: '' });
    expect(result.stderr).toContain(
      'a load balancer (profile-api-https) exists: to remove it too, run teardown with EDGE=lb',
    );
    expect(having(result.commands, 'gcloud compute', ' delete ')).toEqual([]);
  });
});

describe('deploy.sh EDGE=lb refusals', () => {
  it.each([
    [
      { API_KEYS_SECRET: undefined },
      'EDGE=lb with neither API_KEYS_SECRET nor EDGE_IAP=true would leave the API open to anyone',
    ],
    [{ DOMAIN: undefined }, 'DOMAIN is required with EDGE=lb'],
    [{ PROFILE_INGRESS: 'all' }, 'PROFILE_INGRESS=all contradicts EDGE=lb'],
    [{ EDGE: undefined }, 'REGIONS needs EDGE=lb'],
    [{ EDGE: 'cdn' }, 'EDGE must be lb or unset'],
    [{ RATE_LIMIT_PER_MIN: '0' }, 'RATE_LIMIT_PER_MIN must be a whole number from 1 to 1000000'],
    [{ RATE_LIMIT_KEY: 'user' }, 'RATE_LIMIT_KEY must be ip or api-key'],
    [{ RATE_LIMIT_KEY: 'api-key' }, 'RATE_LIMIT_KEY=api-key needs RATE_LIMIT_API_KEY_PREFIXES'],
    [
      { ALLOWED_CIDRS: Array.from({ length: 11 }, (_, i) => `10.${i}.0.0/16`).join(',') },
      'ALLOWED_CIDRS holds 11 ranges; Cloud Armor takes at most 10',
    ],
    [{ ALLOWED_CIDRS: '10.0.0.0/8,everyone' }, "ALLOWED_CIDRS: 'everyone' is not an IP range"],
    [{ REGIONS: 'europe-west1,mars' }, "REGIONS: 'mars' is not a region name"],
    [
      { AEROSPIKE_HOSTS: undefined },
      'AEROSPIKE_HOSTS is required (see --help): us-central1 has no AEROSPIKE_HOSTS_US_CENTRAL1 either',
    ],
    [
      { REGION: 'australia-southeast1', REGIONS: 'australia-southeast1,us-central1' },
      'REGION=australia-southeast1 is in no multi-region',
    ],
  ])('refuses %j before touching anything', async (env, message) => {
    const box = await sandbox(SETTINGS);
    const result = box.attempt([], env);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(1);
    expect(result.commands).toEqual([]);
  });
});

describe('deploy.sh EDGE=lb options', () => {
  const plan = async (env: Record<string, string>) => {
    const box = await sandbox(SETTINGS);
    const result = box.run([], { DRY_RUN: '1', ...env });
    return { ...result, plan: planned(result.stdout), box };
  };

  it('lets only ALLOWED_CIDRS in (403 for others), each known key limited on its own, every other request per address', async () => {
    const { plan: lines } = await plan({
      ALLOWED_CIDRS: '203.0.113.0/24, 198.51.100.7/32',
      RATE_LIMIT_KEY: 'api-key',
      RATE_LIMIT_API_KEY_PREFIXES: 'partnerA, partnerB',
      RATE_LIMIT_PER_MIN: '1200',
    });
    const within =
      "(inIpRange(origin.ip, '203.0.113.0/24') || inIpRange(origin.ip, '198.51.100.7/32')) && ";
    const keys = having(lines, 'security-policies rules create 90');
    expect(
      keys.map((k) => [
        argv(k)[5],
        flag(k, '--expression'),
        flag(k, '--enforce-on-key'),
        flag(k, '--rate-limit-threshold-count'),
        flag(k, '--exceed-action'),
      ]),
    ).toEqual([
      [
        '900',
        `${within}request.headers['x-api-key'].startsWith('partnerA')`,
        'all',
        '1200',
        'deny-429',
      ],
      [
        '901',
        `${within}request.headers['x-api-key'].startsWith('partnerB')`,
        'all',
        '1200',
        'deny-429',
      ],
    ]);
    // Everything else (no key, a random key per request) is counted per address: no way around.
    const [limit] = having(lines, 'security-policies rules create 1000');
    expect(flag(limit ?? '', '--src-ip-ranges')).toBe('203.0.113.0/24,198.51.100.7/32');
    expect(flag(limit ?? '', '--rate-limit-threshold-count')).toBe('1200');
    expect(flag(limit ?? '', '--enforce-on-key')).toBe('ip');
    const [fallback] = having(lines, 'security-policies rules update 2147483647');
    expect(flag(fallback ?? '', '--action')).toBe('deny-403');
  });

  it('removes the rule of a key no longer listed, and refuses a limit per key without known keys', async () => {
    const box = await sandbox({ ...SETTINGS, RATE_LIMIT_KEY: 'api-key' });
    box.run([], { RATE_LIMIT_API_KEY_PREFIXES: 'partnerA,partnerB' });
    const again = box.run([], { RATE_LIMIT_API_KEY_PREFIXES: 'partnerB' });
    expect(having(again.commands, 'security-policies rules update 900 ')).toHaveLength(1);
    expect(
      flag(having(again.commands, 'security-policies rules update 900 ')[0] ?? '', '--expression'),
    ).toBe("request.headers['x-api-key'].startsWith('partnerB')");
    expect(having(again.commands, 'security-policies rules delete').map((c) => argv(c)[5])).toEqual(
      ['901'],
    );
    const none = box.attempt([], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('RATE_LIMIT_KEY=api-key needs RATE_LIMIT_API_KEY_PREFIXES');
    expect(none.stderr).toContain('a new random key each time escape every limit');
    const bad = box.attempt([], { RATE_LIMIT_API_KEY_PREFIXES: "x') || true || ('" });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('must be 4 to 32 letters');
  });

  it('puts Identity-Aware Proxy on the backends instead, with IAP as the only invoker', async () => {
    const { plan: lines } = await plan({
      API_KEYS_SECRET: '',
      EDGE_IAP: 'true',
      IAP_MEMBERS: 'group:api-callers@example.com',
    });
    for (const profile of having(lines, 'gcloud functions deploy profile-api ')) {
      expect(argv(profile)).toContain('--no-allow-unauthenticated');
    }
    expect(
      having(lines, 'gcloud beta services identity create --service=iap.googleapis.com'),
    ).toHaveLength(1);
    const invokers = having(lines, 'add-invoker-policy-binding profile-api ');
    expect(invokers.map((i) => [flag(i, '--region'), flag(i, '--member')])).toEqual([
      ['europe-west1', 'serviceAccount:service-PROJECT_NUMBER@gcp-sa-iap.iam.gserviceaccount.com'],
      ['us-central1', 'serviceAccount:service-PROJECT_NUMBER@gcp-sa-iap.iam.gserviceaccount.com'],
    ]);
    expect(
      having(lines, COMPUTE('backend-services', 'update')).map((u) => flag(u, '--iap')),
    ).toEqual(['enabled', 'enabled', 'enabled']);
    const grants = having(lines, 'gcloud iap web add-iam-policy-binding');
    expect(
      grants.map((g) => [flag(g, '--service'), flag(g, '--member'), flag(g, '--role')]),
    ).toEqual(
      [
        'profile-api-backend',
        'profile-api-backend-europe-west1',
        'profile-api-backend-us-central1',
      ].map((s) => [s, 'group:api-callers@example.com', 'roles/iap.httpsResourceAccessor']),
    );
  });

  it('serves Google error pages when EDGE_JSON_ERRORS=false, with no public bucket', async () => {
    const { plan: lines, box } = await plan({ EDGE_JSON_ERRORS: 'false' });
    expect(having(lines, 'allUsers')).toEqual([]);
    expect(having(lines, 'backend-buckets')).toEqual([]);
    expect(readFileSync(join(box.work, 'urlmap.yaml'), 'utf8')).not.toContain(
      'CustomErrorResponsePolicy',
    );
  });

  it.each([
    ['europe-west1,europe-west4', undefined, 'EU', false],
    ['us-central1,us-east1', 'us-central1', 'US', false],
    ['europe-west1,us-central1', undefined, 'EU', true],
  ])(
    'chooses the bucket location for REGIONS=%s (REGION %s): %s',
    async (regions, region, location, warns) => {
      const env: Record<string, string> = {
        REGIONS: regions,
        AEROSPIKE_HOSTS_US_CENTRAL1: '10.2.0.5',
      };
      if (region) env.REGION = region;
      const { plan: lines, stderr } = await plan(env);
      const [bucket] = having(
        lines,
        'gcloud storage buckets create gs://demo-proj-profile-api-snapshots',
      );
      expect(flag(bucket ?? '', '--location')).toBe(location);
      expect(stderr.includes('across continents')).toBe(warns);
    },
  );

  it('keeps an explicit BUCKET_LOCATION, warning when it is one region for several', async () => {
    const { plan: lines, stderr } = await plan({ BUCKET_LOCATION: 'europe-west1' });
    const [bucket] = having(
      lines,
      'gcloud storage buckets create gs://demo-proj-profile-api-snapshots',
    );
    expect(flag(bucket ?? '', '--location')).toBe('europe-west1');
    expect(stderr).toContain(
      'BUCKET_LOCATION=europe-west1 is one region, read from europe-west1 us-central1',
    );
  });

  it('documents every setting in --help', async () => {
    const box = await sandbox(SETTINGS);
    const { stdout } = box.run(['--help']);
    for (const name of [
      'EDGE',
      'DOMAIN',
      'REGIONS',
      'AEROSPIKE_HOSTS_<REGION>',
      'VPC_CONNECTOR_<REGION>',
      'RATE_LIMIT_PER_MIN',
      'RATE_LIMIT_KEY',
      'ALLOWED_CIDRS',
      'EDGE_IAP',
      'IAP_MEMBERS',
      'EDGE_JSON_ERRORS',
      'VERIFY_API_KEY',
      'VERIFY_ID_TOKEN',
    ]) {
      expect(stdout).toMatch(new RegExp(`^  ${name.replace(/[<>]/g, '\\$&')} `, 'm'));
    }
  });
});

describe('deploy.sh verify through the load balancer', () => {
  const KEY = 'verify-key-0123456789abcdef';
  // A stand-in for the load balancer in front of two regions: /health pinned by the header.
  const answers = new Map<string, { status: number; body: string }>();
  const seen: Array<{
    region: string | undefined;
    key: string | undefined;
    path: string | undefined;
  }> = [];
  let server: Server;
  let url = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const region = req.headers['x-profile-api-region'];
      const key = req.headers['x-api-key'];
      seen.push({
        region: typeof region === 'string' ? region : undefined,
        key: typeof key === 'string' ? key : undefined,
        path: req.url,
      });
      const answer =
        key !== KEY
          ? {
              status: 401,
              body: '{"error":{"code":"unauthorized","message":"a valid x-api-key header is required"}}',
            }
          : (answers.get(String(region)) ?? { status: 404, body: '' });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const verify = async (env: Record<string, string | undefined>) => {
    const box = await sandbox({ ...SETTINGS });
    const dist = await fakeDist();
    seen.length = 0;
    return box.attemptAsync(['verify'], {
      DEPLOY_DIST_DIR: dist.dir,
      BIGQUERY_EMULATOR_HOST: 'http://127.0.0.1:9',
      GOOGLE_OAUTH_ACCESS_TOKEN: 'test-token',
      EDGE_VERIFY_URL: url,
      ...env,
    });
  };

  it("asks each region's /health through the load balancer, with the key kept off every command line", async () => {
    answers.set('europe-west1', { status: 200, body: '{"status":"ok"}' });
    answers.set('us-central1', { status: 200, body: '{"status": "degraded"}' });
    const result = await verify({ VERIFY_API_KEY: KEY });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(seen).toEqual([
      { region: 'europe-west1', key: KEY, path: '/health' },
      { region: 'us-central1', key: KEY, path: '/health' },
    ]);
    expect(result.stdout).toContain('# europe-west1: 200 ok\n');
    expect(result.stdout).toContain('# us-central1: 200 degraded\n');
    expect(result.stdout).toContain(
      `Verified: /health answers through ${url} in europe-west1 us-central1.`,
    );
    expect(result.stdout).not.toContain(KEY);
    expect(result.commands).toEqual([]);
  });

  it('fails naming the region that does not answer, and why', async () => {
    answers.set('europe-west1', { status: 200, body: '{"status":"ok"}' });
    answers.set('us-central1', {
      status: 503,
      body: '{"status":"unavailable","store":{"ok":false}}',
    });
    const result = await verify({ VERIFY_API_KEY: KEY });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('/health did not answer through');
    expect(result.stderr).toContain(
      'us-central1: 503: the function is not ready: {"status":"unavailable"',
    );
    expect(result.stderr).not.toContain('europe-west1:');
    expect(result.stdout).not.toContain('Verified: /health');
  });

  it('says when the key is refused, and refuses to start without one', async () => {
    answers.set('europe-west1', { status: 200, body: '{"status":"ok"}' });
    answers.set('us-central1', { status: 200, body: '{"status":"ok"}' });
    const wrong = await verify({ VERIFY_API_KEY: 'not-the-key-0123456789' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(
      'europe-west1: 401 from the function: the credentials were refused',
    );
    const none = await verify({ VERIFY_API_KEY: undefined });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('VERIFY_API_KEY is required');
    expect(seen).toEqual([]);
  });

  it('waits for the certificate: refuses while Google has not provisioned it', async () => {
    const box = await sandbox(SETTINGS);
    const cert = 'compute-ssl-certificates--profile-api-cert-d0c43d38';
    exist(box, { [cert]: '', 'compute-addresses--profile-api-ip': '' });
    writeFileSync(join(box.state, `${cert}.status`), 'PROVISIONING\n');
    const result = await attemptVerify(box, {
      BIGQUERY_EMULATOR_HOST: 'http://127.0.0.1:9',
      GOOGLE_OAUTH_ACCESS_TOKEN: 'test-token',
      VERIFY_API_KEY: KEY,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "certificate profile-api-cert-d0c43d38 for api.example.com is PROVISIONING: point api.example.com's DNS A record at 203.0.113.10",
    );
  });
});

describe('the front door gcloud command lines', () => {
  it('all parse with the real gcloud, and the URL maps pass its import schema', async (ctx) => {
    const real = realGcloud();
    if (!real) ctx.skip('gcloud is not installed on this machine: parse check skipped');
    const { first, second, box } = await deployed;
    const iap = await sandbox({
      ...SETTINGS,
      API_KEYS_SECRET: '',
      EDGE_IAP: 'true',
      IAP_MEMBERS: 'user:ops@example.com',
    });
    const iapFirst = iap.run([], {
      ALLOWED_CIDRS: '203.0.113.0/24',
      RATE_LIMIT_KEY: 'api-key',
      RATE_LIMIT_API_KEY_PREFIXES: 'partnerA',
    });
    // An older deploy's region left in the backend service: the warning prints its removal.
    writeFileSync(
      join(iap.state, 'compute-backend-services--profile-api-backend.backends'),
      `https://www.googleapis.com/compute/v1/projects/demo-proj/regions/asia-east1/networkEndpointGroups/profile-api-neg-asia-east1\n`,
    );
    const iapSecond = iap.run();
    const teardown = iap.run(['teardown'], { TEARDOWN_ALL: '1' });
    const lines = gcloudShapes(
      [
        ...first.commands,
        ...second.commands,
        ...iapFirst.commands,
        ...iapSecond.commands,
        ...teardown.commands,
        ...printedCommands(first.stdout, iapSecond.stderr),
      ],
      // A region's resources parse as the other's do.
      (line) => line.replace(/europe-west1|us-central1/g, 'REGION'),
    ).filter((c) =>
      /gcloud (compute|iap|beta)|edge-errors|profile-api --gen2|profile-api --project/.test(c),
    );
    for (const expected of [
      'gcloud compute addresses create',
      'gcloud compute ssl-certificates create',
      'gcloud compute ssl-policies create',
      'gcloud compute security-policies create',
      'gcloud compute security-policies rules create',
      'gcloud compute security-policies rules update',
      'gcloud compute network-endpoint-groups create',
      'gcloud compute backend-services create',
      'gcloud compute backend-services add-backend',
      'gcloud compute backend-services update',
      'gcloud compute backend-services remove-backend',
      'gcloud compute backend-buckets create',
      'gcloud compute url-maps import',
      'gcloud compute target-https-proxies create',
      'gcloud compute target-https-proxies update',
      'gcloud compute target-http-proxies create',
      'gcloud compute forwarding-rules create',
      'gcloud compute forwarding-rules delete',
      'gcloud compute network-endpoint-groups delete',
      'gcloud iap web add-iam-policy-binding',
      'gcloud beta services identity create',
    ]) {
      expect(having(lines, expected).length, expected).toBeGreaterThan(0);
    }
    expect(await unparsedByGcloud(lines, real?.path ?? '')).toEqual([]);
    const gcloud = real?.gcloud ?? '';
    expect(importSchemaError(gcloud, 'UrlMap', join(box.work, 'urlmap.yaml'))).toBeUndefined();
    expect(
      importSchemaError(gcloud, 'UrlMap', join(box.work, 'http-redirect.yaml')),
    ).toBeUndefined();
    // The schema check can fail: a misspelt field is refused.
    const wrong = join(box.work, 'wrong.yaml');
    writeFileSync(
      wrong,
      readFileSync(join(box.work, 'urlmap.yaml'), 'utf8').replace('exactMatch', 'exactMatches'),
    );
    expect(importSchemaError(gcloud, 'UrlMap', wrong)).toContain("'exactMatches' was unexpected");
  }, 180_000);
});
