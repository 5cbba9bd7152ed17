import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Table } from '@google-cloud/bigtable';
import type { PubSub } from '@google-cloud/pubsub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileRuntime } from '../../functions/profile/runtime.js';
import { readVersion } from '../../shared/mapping/bigtable-mapping-store.js';
import { PubSubShardQueue } from '../../shared/mapping/shard-queue.js';
import { readPlan } from '../../shared/mapping/sync-plan.js';
import { logMetrics } from '../../shared/ops/log-metrics.js';
import { loadOpsSettings } from '../../shared/ops/ops-settings.js';
import type { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { PubSubEmulator, pubsubEmulatorMissing } from '../emulators/pubsub-emulator.js';
import { bigtableEnv, createMappingTable, dumpCells } from '../helpers/bigtable-table.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';
import { type GraphStack, startGraphStack } from '../helpers/graph-stack.js';
import { httpEvent, resultJson } from '../helpers/http-event.js';
import { cloudRunEntry, matchesLogFilter } from '../helpers/logging-query.js';
import { type ServedFunction, serveFunction } from '../helpers/serve-function.js';
import { testSyncJob } from '../helpers/sync-job.js';

// The shards of a version through Google's Pub/Sub emulator: published by syncMapping, pushed
// to the syncMappingShard function (served by functions-framework) behind a stand-in for Cloud
// Run's max instances, retried with the subscription's back-off, dead-lettered past its maximum
// delivery attempts and drained by the next syncMapping run. The emulator ships with
// google-cloud-cli: without it, these tests are skipped, and say so.
const missing = pubsubEmulatorMissing();
if (missing) console.warn(`SKIPPED test/integration/bigtable-pubsub.test.ts: ${missing}`);

const WINDOW_DAYS = 2;
const TODAY = new Date().toISOString().slice(0, 10);
const PROJECT = 'local-project';
const TOPIC = `projects/${PROJECT}/topics/sync-shards`;
const DEAD_TOPIC = `projects/${PROJECT}/topics/sync-shards-dead`;
const DEAD_SUBSCRIPTION = `projects/${PROJECT}/subscriptions/sync-shards-dead`;
const TABLE = 'pubsub-mapping';
const MAX_DELIVERY_ATTEMPTS = 5;

/**
 * In front of the worker, what Cloud Run does at its max instances: at most `max` requests in
 * flight, the rest answered 429 (Cloud Run first queues them up to 60 s). `refuseOnce` refuses
 * the next delivery that arrives, once, so that a shard goes through a redelivery. (Few refusals
 * on purpose: after a burst of negative answers the emulator stops pushing for minutes, where
 * real Pub/Sub's push backoff stays within 60 s.)
 */
class CloudRunStandIn {
  inFlight = 0;
  maxSeen = 0;
  refused = 0;
  refuseOnce = false;
  readonly refusedIds: string[] = [];
  readonly delivered: string[] = [];
  readonly server: Server;

  constructor(
    private readonly target: () => string,
    /** Instances x concurrency; 0 refuses everything (a test holds deliveries back). */
    public max: number,
  ) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => void this.forward(Buffer.concat(chunks), res));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  private async forward(body: Buffer, res: import('node:http').ServerResponse): Promise<void> {
    const id =
      (JSON.parse(body.toString()) as { message?: { messageId?: string } }).message?.messageId ??
      '';
    if (this.refuseOnce || this.inFlight >= this.max) {
      this.refuseOnce = false;
      this.refused++;
      this.refusedIds.push(id);
      res.writeHead(429).end();
      return;
    }
    this.delivered.push(id);
    this.inFlight++;
    this.maxSeen = Math.max(this.maxSeen, this.inFlight);
    try {
      const answer = await fetch(this.target(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const text = await answer.text();
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
    } catch {
      res.writeHead(502).end();
    } finally {
      this.inFlight--;
    }
  }
}

describe.skipIf(missing !== undefined)('syncMapping through Pub/Sub', () => {
  let stack: GraphStack;
  let bq: BigQueryEmulator;
  let pubsubEmulator: PubSubEmulator;
  let pubsub: PubSub;
  let worker: ServedFunction;
  let standIn: CloudRunStandIn;
  let table: Table;
  const saved = { ...process.env };

  beforeAll(async () => {
    [stack, pubsubEmulator] = await Promise.all([
      startGraphStack({ seed: 11, persons: 200, days: 3, last: TODAY }),
      PubSubEmulator.start(),
    ]);
    ({ bq } = stack);
    table = await createMappingTable(TABLE, WINDOW_DAYS);
    // The worker function's environment, as deploy.sh writes it (emulators instead of Google).
    Object.assign(process.env, {
      PUBSUB_EMULATOR_HOST: pubsubEmulator.host,
      ...bigtableEnv(TABLE),
      BIGQUERY_EMULATOR_HOST: bq.baseUrl,
      BIGQUERY_PROJECT: bq.projectId,
      GOOGLE_OAUTH_ACCESS_TOKEN: 'fake',
      LOG_LEVEL: 'ERROR',
    });
    // The deployed entry module: every function registered, the framework hardened.
    await import('../../functions/index.js');
    worker = await serveFunction('syncMappingShard');
    standIn = new CloudRunStandIn(() => `${worker.url}/`, 4);
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));

    // What deploy.sh creates: the topic, its push subscription to the worker (with a retry policy
    // and a dead-letter policy), the dead-letter topic and its pull subscription.
    const { PubSub } = await import('@google-cloud/pubsub');
    pubsub = new PubSub({ projectId: PROJECT });
    const [topic] = await pubsub.createTopic(TOPIC);
    const [dead] = await pubsub.createTopic(DEAD_TOPIC);
    await dead.createSubscription(DEAD_SUBSCRIPTION);
    await topic.createSubscription(`projects/${PROJECT}/subscriptions/sync-shards-push`, {
      pushConfig: { pushEndpoint: standIn.url },
      ackDeadlineSeconds: 60,
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
      deadLetterPolicy: { deadLetterTopic: DEAD_TOPIC, maxDeliveryAttempts: MAX_DELIVERY_ATTEMPTS },
    });
  }, 120_000);

  afterAll(async () => {
    await pubsub?.close();
    await worker?.close();
    await new Promise((resolve) => standIn?.server.close(resolve));
    await pubsubEmulator?.close();
    await stack?.close();
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  });

  /** The coordinator on the Pub/Sub queue, as the scheduler calls it. */
  function coordinator(log = captureLogger().log) {
    return testSyncJob({
      bq,
      table,
      windowDays: WINDOW_DAYS,
      config: { SYNC_SHARD_PERSONS: 25 },
      queue: new PubSubShardQueue(TOPIC, DEAD_SUBSCRIPTION),
      log,
    });
  }

  it('lands a version whose shards the worker gets through Pub/Sub, a refused delivery (429) delivered again, with the cells an inline sync writes', async () => {
    // Four instances of concurrency 1 (the emulator pushes two at a time), and the first
    // delivery refused as at max instances.
    standIn.refuseOnce = true;
    const run = coordinator();
    const dispatched = await run();
    expect(dispatched).toMatchObject({ outcome: 'dispatched', plan: { done: 0 } });
    const shards = dispatched.plan?.shards ?? 0;
    expect(shards).toBeGreaterThan(4);
    expect(dispatched.plan?.sent).toBe(shards);
    const version = await eventually(
      async () => {
        const v = await readVersion(table, 5_000);
        if (!v) throw new Error('not landed yet');
        return v;
      },
      60_000,
      250,
    );
    expect(version).toMatchObject({ partition: TODAY });
    // The refused message came back (Pub/Sub's retry policy) and its shard landed.
    expect(standIn.refusedIds).toHaveLength(1);
    expect(standIn.delivered).toContain(standIn.refusedIds[0]);
    expect(await readPlan(table)).toBeUndefined();

    const inline = await createMappingTable('pubsub-inline', WINDOW_DAYS);
    await testSyncJob({ bq, table: inline, windowDays: WINDOW_DAYS })();
    expect(await dumpCells(table, ['l'])).toEqual(await dumpCells(inline, ['l']));
    expect(await run()).toMatchObject({ outcome: 'unchanged', version: TODAY });
  }, 120_000);

  it('dead-letters a shard that keeps failing; the next run records it (its ERROR line, /health) and sends it again', async () => {
    // A version readers use (the first test's, or one written here when it ran alone).
    await testSyncJob({ bq, table, windowDays: WINDOW_DAYS })();
    const before = await readVersion(table, 5_000);
    // Shard 2's rows (result page 3: 25 rows a shard) cannot be read; the others can.
    bq.inject({
      on: 'page',
      page: 3,
      status: 400,
      reason: 'invalid',
      message: 'injected',
      times: 100_000,
    });
    const { log, lines } = captureLogger();
    const profile = createProfileRuntime(
      loadProfileConfig({
        PROFILE_STORE: 'aerospike',
        SNAPSHOT_URI: `file:${stack.dir}`,
        AEROSPIKE_HOSTS: `${stack.aerospike.host}:${stack.aerospike.port}`,
        ...bigtableEnv(TABLE),
      }),
      captureLogger().log,
    );
    // As the entry module starts an instance (/health itself never connects to Aerospike).
    profile.warmUp();
    try {
      expect(await coordinator(log)({ resync: true })).toMatchObject({ outcome: 'dispatched' });
      // Pub/Sub delivers it again with back-off (1 to 2 s), gives up after 5 attempts, and the
      // next scheduled run drains the dead letter.
      const drained = await eventually(
        async () => {
          const summary = await coordinator(log)();
          if (!summary.plan?.failedShards.some((f) => f.deadLettered)) {
            throw new Error('nothing dead-lettered yet');
          }
          return summary;
        },
        90_000,
        2_000,
      );
      expect(drained.plan?.failedShards).toEqual([
        {
          shard: 2,
          attempts: MAX_DELIVERY_ATTEMPTS,
          error: expect.stringMatching(
            /^dead-lettered after 5 delivery attempts; last error: .*injected/,
          ),
          deadLettered: true,
        },
      ]);
      // Sent again, and said at ERROR.
      expect(drained.plan?.sent).toBe(1);
      const errors = lines.filter((l) => l.severity === 'ERROR').map((l) => String(l.message));
      expect(errors).toContainEqual(
        expect.stringMatching(
          /^syncMapping: 1 shard\(s\) of version .* failed \(first: shard 2, 5 attempts/,
        ),
      );
      // deploy.sh's failed-shards metric counts those lines (one per run that found the shard
      // failed), and nothing else the runs wrote.
      const failedShards = logMetrics(
        loadOpsSettings({
          PROJECT_ID: 'p-123456',
          NAME_PREFIX: 'profile-api',
          PROFILE_REGIONS: 'europe-west1',
          MAPPING_STORE: 'bigtable',
        }),
      ).find((m) => m.name === 'profile-api-sync-failed-shards');
      const where = {
        project: 'p-123456',
        service: 'profile-api-sync-mapping',
        region: 'europe-west1',
      };
      const counted = lines.filter((l) =>
        matchesLogFilter(String(failedShards?.filter), cloudRunEntry(l, where)),
      );
      const failedLines = lines.filter((l) =>
        /shard\(s\) of version .* failed/.test(String(l.message)),
      );
      expect(failedLines.length).toBeGreaterThan(0);
      expect(counted).toEqual(failedLines);
      // /health lists it while the version is not done, and the version readers use is the last.
      await profile.deps.mapping.ready(5_000);
      await profile.deps.catalog.getWithin(10_000, () => new Error('no catalog'));
      const health = resultJson(await profile.handler(httpEvent('/health'), {}));
      expect(health.status).toBe('degraded');
      expect(health.bigtable).toMatchObject({
        lastSyncedPartition: TODAY,
        syncInProgress: {
          partition: TODAY,
          failedShards: [expect.objectContaining({ shard: 2, deadLettered: true })],
        },
      });
      expect(await readVersion(table, 5_000)).toEqual(before);
    } finally {
      bq.clearFaults();
      await profile.deps.store.close();
      await profile.deps.mapping.close();
    }
    // With BigQuery answering again, the shard sent again lands, and with it the version.
    await eventually(
      async () => {
        const v = await readVersion(table, 5_000);
        if (v && v.version !== before?.version) return;
        await coordinator()();
        throw new Error('not landed yet');
      },
      90_000,
      1_000,
    );
    expect(await readPlan(table)).toBeUndefined();
  }, 240_000);
});
