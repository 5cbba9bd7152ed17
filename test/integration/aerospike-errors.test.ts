import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import { AerospikeProfileStore } from '../../shared/profiles/aerospike-profile-store.js';
import type { LoadedSnapshot } from '../../shared/snapshots/load-snapshot.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { cacheOf, catalogSnapshot, mappingSnapshot, registry } from '../helpers/fixed-snapshots.js';
import { httpEvent, resultJson, resultText } from '../helpers/http-event.js';
import { withBackendChecks } from '../helpers/profile-deps.js';

// The profile function on the real client and our Aerospike test server: what a caller gets and
// what the log says when Aerospike refuses a request for good, and what /health shows.
const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const B = '1234567890';

let emulator: AerospikeEmulator;
const stores: AerospikeProfileStore[] = [];

function profileFunction(namespace = 'profiles') {
  const { log, lines } = captureLogger();
  const config = loadProfileConfig({
    PROFILE_STORE: 'aerospike',
    AEROSPIKE_NAMESPACE: namespace,
    AEROSPIKE_TOTAL_TIMEOUT_MS: '400',
    REQUEST_BUDGET_MS: '1000',
  });
  const store = new AerospikeProfileStore(
    {
      hosts: [{ host: emulator.host, port: emulator.port }],
      namespace,
      connectTimeoutMs: 1_000,
      totalTimeoutMs: 400,
      maxRetries: 1,
      maxConnsPerNode: 20,
    },
    log,
  );
  stores.push(store);
  const cache = <V>(value: LoadedSnapshot<V>) => cacheOf(async () => value);
  const deps: ProfileDeps = withBackendChecks({
    config,
    registry,
    catalog: cache(catalogSnapshot([{ id: '1', name: 'auto', type: 'interest', size: 1 }])),
    // The in-memory mapping over a fixed snapshot, as the runtime wires it.
    mapping: new SnapshotMappingStore(
      cache(
        mappingSnapshot([
          [
            [A, '222222'],
            [B, '444444'],
          ],
        ]),
      ),
      { maxStalenessSecs: 172_800 },
    ),
    mappingBudgetBytes: 0,
    store,
    log,
    now: Date.now,
  });
  return { deps, store, lines };
}

async function get(deps: ProfileDeps, path: string) {
  const res = await createProfileHandler(deps)(httpEvent(path), {});
  return { status: res.statusCode, headers: res.headers, text: resultText(res), res };
}

beforeAll(async () => {
  emulator = await AerospikeEmulator.start();
  await emulator.put('profiles', '222222', { type: 'string', value: A }, { segments: [1] });
});

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await emulator.close();
});

beforeEach(async () => {
  await emulator.setMode({ kind: 'normal' });
});

describe('a store that refuses for good', () => {
  it('answers a bare 500 and logs at ERROR when the namespace does not exist', async () => {
    const { deps, lines } = profileFunction('no_such_ns');
    const res = await get(deps, `/?id=${A}`);
    expect(res.status).toBe(500);
    expect(res.text).toBe('{"error":{"code":"internal","message":"internal error"}}');
    const logged = lines.find((l) => l.severity === 'ERROR');
    expect(logged).toMatchObject({
      message: 'profile request failed',
      err: { name: 'ProfileStoreRejectedError' },
    });
    expect(JSON.stringify(logged)).toMatch(/code 20 .*namespace not found/);
  });

  it('answers 500 to a security refusal (role violation), 503 + Retry-After to an overload', async () => {
    const { deps, lines } = profileFunction();
    const d = deps;
    await emulator.setMode({ kind: 'refuse', result: 81 });
    const refused = await get(d, `/?id=${A}`);
    expect(refused.status).toBe(500);
    expect(JSON.stringify(lines.find((l) => l.severity === 'ERROR'))).toMatch(
      /code 81 .*role violation/,
    );

    await emulator.setMode({ kind: 'refuse', result: 18 });
    const overloaded = await get(d, `/?id=${A}`);
    expect(overloaded.status).toBe(503);
    expect(overloaded.headers['retry-after']).toBe('5');
    expect(resultJson(overloaded.res)).toMatchObject({ error: { code: 'store_unavailable' } });

    await emulator.setMode({ kind: 'normal' });
    const served = await get(d, `/?id=${A}`);
    expect(served.status).toBe(200);
    expect(resultJson(served.res)[A]).toMatchObject({ found: true });
  });
});

describe('/health', () => {
  it('never opens a connection, and shows the cluster once requests have', async () => {
    const { deps } = profileFunction();
    const d = deps;
    await emulator.resetStats();
    const before = await get(d, '/health');
    expect(before.status).toBe(503);
    expect(resultJson(before.res).store).toMatchObject({
      name: 'aerospike',
      ok: false,
      connected: false,
      nodes: [],
    });
    expect((await emulator.stats()).connections).toBe(0);

    expect((await get(d, `/?id=${A}`)).status).toBe(200);
    const after = await get(d, '/health');
    expect(after.status).toBe(200);
    const store = resultJson(after.res).store as Record<string, unknown>;
    expect(store).toMatchObject({
      ok: true,
      connected: true,
      nodes: [{ name: expect.any(String), address: `${emulator.host}:${emulator.port}` }],
      maxConnsPerNode: 20,
      eventLoopDelay: { p99Ms: expect.any(Number), maxMs: expect.any(Number) },
    });
  });
});
