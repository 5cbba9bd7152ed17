import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../../shared/errors.js';
import {
  AerospikeProfileStore,
  type AerospikeStoreOptions,
} from '../../shared/profiles/aerospike-profile-store.js';
import type { ProfileBins } from '../../shared/profiles/profile-store.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { eventually } from '../helpers/eventually.js';

// The profile store on the real client against a 3-node test cluster (replication factor 2)
// that advertises peers, generations and replicas as real nodes do, and drops a node that
// stops answering after the heartbeat timeout (1.5 s, the real default).
const SET = '222222';
const IDS = Array.from({ length: 300 }, (_, i) => `id-${i}`);
const LOOPS = 8;
const BUDGET_MS = 1_500;

let cluster: AerospikeEmulator;
const stores: AerospikeProfileStore[] = [];

function newStore(options: Partial<AerospikeStoreOptions> = {}, port = cluster.port) {
  const { log, lines } = captureLogger();
  const store = new AerospikeProfileStore(
    {
      hosts: [{ host: '127.0.0.1', port }],
      namespace: 'profiles',
      connectTimeoutMs: 1_000,
      totalTimeoutMs: 500,
      maxRetries: 1,
      maxConnsPerNode: 64,
      ...options,
    },
    log,
  );
  stores.push(store);
  return { store, lines };
}

function keys(ids: readonly string[]) {
  return ids.map((id) => ({ set: SET, id, keyType: 'string' as const }));
}

interface LoadFigures {
  reads: number;
  failed: number;
  wrong: number;
  slowestMs: number;
  errors: string[];
}

/**
 * Reads random keys from LOOPS loops at once: a few hundred reads first, then `act`, then on
 * until `settled` holds and another few hundred reads have been made.
 */
async function underLoad(
  store: AerospikeProfileStore,
  act: () => Promise<void>,
  settled: () => boolean,
): Promise<LoadFigures> {
  const figures: LoadFigures = { reads: 0, failed: 0, wrong: 0, slowestMs: 0, errors: [] };
  let phase: 'before' | 'during' | 'after' = 'before';
  let after = 0;
  const done = () => phase === 'after' && after >= 300;
  const loop = async () => {
    while (!done()) {
      const ids = Array.from({ length: 6 }, () => IDS[Math.floor(Math.random() * IDS.length)]);
      const started = performance.now();
      try {
        const bins = await store.getMany(keys(ids as string[]), { timeoutMs: BUDGET_MS });
        if (!bins.every((b: ProfileBins | undefined, i) => b?.v === ids[i])) figures.wrong++;
      } catch (err) {
        figures.failed++;
        figures.errors.push((err as Error).message);
      }
      figures.slowestMs = Math.max(figures.slowestMs, performance.now() - started);
      figures.reads++;
      if (phase === 'after') after++;
      // A read now and then leaves the loop to the test's own timers and control calls.
      await new Promise((r) => setImmediate(r));
    }
  };
  const loops = Array.from({ length: LOOPS }, loop);
  while (figures.reads < 300) await new Promise((r) => setTimeout(r, 10));
  phase = 'during';
  await act();
  await eventually(async () => expect(settled()).toBe(true), 15_000);
  phase = 'after';
  await Promise.all(loops);
  return figures;
}

function nodeNames(store: AerospikeProfileStore): string[] {
  return (store.detail().nodes as { name: string }[]).map((n) => n.name).sort();
}

function events(store: AerospikeProfileStore): { event: string; node?: string }[] {
  return store.detail().clusterEvents as { event: string; node?: string }[];
}

/**
 * The reads under load rode through: at most 1 in 1,000 failed, none answered wrong, and (with
 * `withinBudget`) none took longer than the request budget.
 */
function expectRodeThrough(
  figures: Awaited<ReturnType<typeof underLoad>>,
  { withinBudget }: { withinBudget: boolean },
) {
  expect(figures.failed, figures.errors.slice(0, 3).join('; ')).toBeLessThanOrEqual(
    Math.floor(figures.reads / 1_000),
  );
  expect(figures.wrong).toBe(0);
  if (withinBudget) expect(figures.slowestMs).toBeLessThan(BUDGET_MS);
}

beforeAll(async () => {
  cluster = await AerospikeEmulator.start({ nodes: 3, replicationFactor: 2 });
  await cluster.putMany(
    'profiles',
    IDS.map((id) => ({ set: SET, key: { type: 'string' as const, value: id }, bins: { v: id } })),
  );
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await cluster.close();
});

describe('a 3-node cluster', () => {
  it('is found whole from one seed, and reads go to every node', async () => {
    const { store } = newStore();
    const view = await cluster.clusterView();
    for (const n of [0, 1, 2]) await cluster.resetStats(n);
    await store.getMany(keys(IDS.slice(0, 60)), { timeoutMs: BUDGET_MS });
    expect(nodeNames(store)).toEqual(view.nodes.map((n) => n.name).sort());
    for (const n of [0, 1, 2]) expect((await cluster.stats(n)).batchKeys).toBeGreaterThan(0);
  });

  it('loses a killed node without failing reads, and says which node and when', async () => {
    const { store, lines } = newStore();
    await store.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
    const lost = (await cluster.clusterView()).nodes[1]?.name as string;
    const figures = await underLoad(
      store,
      () => cluster.stopNode(1),
      () => !nodeNames(store).includes(lost),
    );
    expectRodeThrough(figures, { withinBudget: true });
    expect(events(store).at(-1)).toMatchObject({ event: 'nodeRemoved', node: lost });
    expect(lines.find((l) => l.message === 'aerospike node removed')).toMatchObject({
      severity: 'WARNING',
      node: lost,
      at: expect.any(String),
    });

    await cluster.startNode(1);
    await eventually(async () => expect(nodeNames(store)).toContain(lost));
    expect(events(store).at(-1)).toMatchObject({ event: 'nodeAdded', node: lost });
  });

  it('loses a node that stops answering (its sockets stay open) within the budget', async () => {
    const { store } = newStore();
    await store.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
    const lost = (await cluster.clusterView()).nodes[2]?.name as string;
    const figures = await underLoad(
      store,
      () => cluster.isolateNode(2),
      () => !nodeNames(store).includes(lost),
    );
    expectRodeThrough(figures, { withinBudget: true });
    expect(events(store).at(-1)).toMatchObject({ event: 'nodeRemoved', node: lost });

    await cluster.healNode(2);
    await eventually(async () => expect(nodeNames(store)).toContain(lost));
  });

  it('rides through a graceful restart of a node', async () => {
    const { store } = newStore();
    await store.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
    const restarted = (await cluster.clusterView()).nodes[1]?.name as string;
    let back = false;
    const figures = await underLoad(
      store,
      async () => {
        await cluster.stopNode(1, { graceful: true });
        await eventually(async () => expect(nodeNames(store)).not.toContain(restarted));
        await cluster.startNode(1);
        back = true;
      },
      () => back && nodeNames(store).includes(restarted),
    );
    expectRodeThrough(figures, { withinBudget: false });
    expect(events(store).slice(-2)).toMatchObject([
      { event: 'nodeRemoved', node: restarted },
      { event: 'nodeAdded', node: restarted },
    ]);
  });

  it('answers unavailable within the budget when every node is down', async () => {
    const { store } = newStore();
    await store.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
    await Promise.all([0, 1, 2].map((n) => cluster.stopNode(n)));
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const err = await store
        .getMany(keys(IDS.slice(i, i + 6)), { timeoutMs: BUDGET_MS })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(performance.now() - started).toBeLessThan(BUDGET_MS);
    }
    await Promise.all([0, 1, 2].map((n) => cluster.startNode(n)));
  });
});

describe("the client's own batch retry (C client 7.4.0)", () => {
  it('goes back to a lost node: every batch reading from it fails until the node is dropped', async () => {
    // A cluster that keeps the lost node in its map (a long heartbeat timeout), as every
    // cluster does for the first 1.5 s or more after a node dies.
    const slow = await AerospikeEmulator.start({ nodes: 2, heartbeatTimeoutMs: 60_000 });
    try {
      await slow.putMany(
        'profiles',
        IDS.map((id) => ({
          set: SET,
          key: { type: 'string' as const, value: id },
          bins: { v: id },
        })),
      );
      const theirs = newStore({ retry: 'client' }, slow.port).store;
      const ours = newStore({}, slow.port).store;
      await theirs.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
      await ours.getMany(keys(IDS.slice(0, 10)), { timeoutMs: BUDGET_MS });
      await slow.stopNode(1);
      // 40 keys: every batch has keys on both nodes.
      const read = (store: AerospikeProfileStore) =>
        store.getMany(keys(IDS.slice(0, 40)), { timeoutMs: BUDGET_MS });
      await expect(read(theirs)).rejects.toThrow(/code -6 Failed to connect/);
      const bins = await read(ours);
      expect(bins.map((b) => b?.v)).toEqual(IDS.slice(0, 40));
    } finally {
      await slow.close();
    }
  });
});
