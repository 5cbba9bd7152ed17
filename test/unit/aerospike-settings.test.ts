import type { Client, ConfigOptions } from 'aerospike';
import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { BackendUnavailableError, ConfigError } from '../../shared/errors.js';
import {
  AerospikeProfileStore,
  type AerospikeStoreOptions,
  aerospikeFailureKind,
} from '../../shared/profiles/aerospike-profile-store.js';
import { createProfileStore } from '../../shared/profiles/create-profile-store.js';
import { EventLoopDelayMonitor } from '../../shared/profiles/event-loop-delay.js';
import { ProfileStoreRejectedError } from '../../shared/profiles/profile-store.js';
import { captureLogger } from '../helpers/capture-logger.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const AEROSPIKE = { PROFILE_STORE: 'aerospike' } as const;
const LOOP = { p50Ms: 1, p99Ms: 2, maxMs: 3, samples: 100, windowSecs: 1 };

describe('Aerospike settings', () => {
  it('defaults: warnings logged, 100 connections per node, idle sockets dropped after 55 s', () => {
    const c = loadProfileConfig(AEROSPIKE);
    expect(c).toMatchObject({
      AEROSPIKE_TOTAL_TIMEOUT_MS: 500,
      AEROSPIKE_MAX_RETRIES: 1,
      AEROSPIKE_MAX_CONNS_PER_NODE: 100,
      AEROSPIKE_MAX_SOCKET_IDLE_SECS: 55,
      AEROSPIKE_LOG_LEVEL: 'WARN',
      AEROSPIKE_AUTH_MODE: 'INTERNAL',
    });
    // Unset: derived from the total timeout per call (see the store's policy test below).
    expect(c.AEROSPIKE_SOCKET_TIMEOUT_MS).toBeUndefined();
    expect(c.AEROSPIKE_TLS_NAME).toBeUndefined();
  });

  it.each([
    [{ AEROSPIKE_MAX_CONNS_PER_NODE: '300' }, 'AEROSPIKE_MAX_CONNS_PER_NODE', 300],
    [{ AEROSPIKE_MAX_SOCKET_IDLE_SECS: '0' }, 'AEROSPIKE_MAX_SOCKET_IDLE_SECS', 0],
    [{ AEROSPIKE_LOG_LEVEL: 'INFO' }, 'AEROSPIKE_LOG_LEVEL', 'INFO'],
    [{ AEROSPIKE_SOCKET_TIMEOUT_MS: '250' }, 'AEROSPIKE_SOCKET_TIMEOUT_MS', 250],
    [{ AEROSPIKE_TLS_NAME: 'aero.internal', AEROSPIKE_TLS_CA: CA }, 'AEROSPIKE_TLS_CA', CA],
    [
      { AEROSPIKE_TLS_NAME: 'a', AEROSPIKE_TLS_CERT: CA, AEROSPIKE_TLS_KEY: KEY },
      'AEROSPIKE_TLS_KEY',
      KEY,
    ],
    [
      {
        AEROSPIKE_AUTH_MODE: 'PKI',
        AEROSPIKE_TLS_NAME: 'a',
        AEROSPIKE_TLS_CERT: CA,
        AEROSPIKE_TLS_KEY: KEY,
      },
      'AEROSPIKE_AUTH_MODE',
      'PKI',
    ],
    [
      {
        AEROSPIKE_AUTH_MODE: 'EXTERNAL',
        AEROSPIKE_TLS_NAME: 'a',
        AEROSPIKE_USER: 'u',
        AEROSPIKE_PASSWORD: 'p',
      },
      'AEROSPIKE_AUTH_MODE',
      'EXTERNAL',
    ],
  ] as const)('%j sets %s', (env, name, expected) => {
    expect(loadProfileConfig({ ...AEROSPIKE, ...env })[name]).toEqual(expected);
  });

  it.each([
    [{ AEROSPIKE_SOCKET_TIMEOUT_MS: '600' }, /AEROSPIKE_SOCKET_TIMEOUT_MS: must not exceed/],
    [{ AEROSPIKE_MAX_CONNS_PER_NODE: '0' }, /AEROSPIKE_MAX_CONNS_PER_NODE/],
    [{ AEROSPIKE_LOG_LEVEL: 'VERBOSE' }, /AEROSPIKE_LOG_LEVEL/],
    [{ AEROSPIKE_AUTH_MODE: 'LDAP' }, /AEROSPIKE_AUTH_MODE/],
    [{ AEROSPIKE_TLS_CA: CA }, /AEROSPIKE_TLS_CA: needs AEROSPIKE_TLS_NAME/],
    [{ AEROSPIKE_TLS_NAME: 'a', AEROSPIKE_TLS_CA: 'not pem' }, /AEROSPIKE_TLS_CA: expected PEM/],
    [
      { AEROSPIKE_TLS_NAME: 'a', AEROSPIKE_TLS_CERT: CA },
      /AEROSPIKE_TLS_CERT and .*_KEY go together/,
    ],
    [
      { AEROSPIKE_AUTH_MODE: 'EXTERNAL', AEROSPIKE_USER: 'u', AEROSPIKE_PASSWORD: 'p' },
      /EXTERNAL needs TLS/,
    ],
    [{ AEROSPIKE_AUTH_MODE: 'PKI', AEROSPIKE_TLS_NAME: 'a' }, /PKI needs a client certificate/],
    [
      {
        AEROSPIKE_AUTH_MODE: 'PKI',
        AEROSPIKE_TLS_NAME: 'a',
        AEROSPIKE_TLS_CERT: CA,
        AEROSPIKE_TLS_KEY: KEY,
        AEROSPIKE_PASSWORD: 'p',
      },
      /AEROSPIKE_PASSWORD: PKI authenticates with the certificate/,
    ],
    [{ AEROSPIKE_USER: 'u' }, /AEROSPIKE_USER and AEROSPIKE_PASSWORD go together/],
  ])('refuses %j, naming the variable', (env, message) => {
    const load = () => loadProfileConfig({ ...AEROSPIKE, ...env });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(message);
  });

  it('checks combinations only where Aerospike is the store', () => {
    expect(() => loadProfileConfig({ AEROSPIKE_USER: 'u' })).not.toThrow();
  });
});

describe('aerospikeFailureKind', () => {
  it.each([
    [20, 'rejected'], // namespace not found
    [81, 'rejected'], // role violation
    [80, 'rejected'], // not authenticated
    [65, 'rejected'], // invalid credential
    [4, 'rejected'], // request invalid
    [-2, 'rejected'], // invalid parameter
    [151, 'rejected'], // batch-max-requests below our batch size
    [9, 'unavailable'], // timeout
    [-6, 'unavailable'], // async connect failed
    [-7, 'unavailable'], // no more connections
    [-8, 'unavailable'], // no node for the partition
    [-10, 'unavailable'], // connection
    [11, 'unavailable'], // partition unavailable
    [18, 'unavailable'], // device overload
    [-14, 'unavailable'], // max error rate
    [undefined, 'unavailable'],
  ] as const)('code %s is %s', (code, kind) => {
    expect(aerospikeFailureKind(code)).toBe(kind);
  });
});

/** A client double recording what the store asks of it. */
class FakeClient {
  readonly policies: Record<string, unknown>[] = [];
  readonly gets: { key: unknown; policy: Record<string, unknown> }[] = [];
  readonly closed: unknown[] = [];
  /** Records by user key, for get(). */
  readonly records = new Map<string, Record<string, unknown>>();
  failWith: { code: number; message: string } | undefined;
  getFailsWith: { code: number; message: string } | undefined;
  rows: { status: number; record: { bins?: Record<string, unknown> } }[] | undefined;
  /** The client's two forms: a promise, or a callback called later with (error, results). */
  batchRead(
    records: unknown[],
    policy: Record<string, unknown>,
    callback?: (err: unknown, results?: unknown[]) => void,
  ) {
    const read = this.readBatch(records, policy);
    if (!callback) return read;
    read.then(
      (results) => callback(null, results),
      (err: unknown) => callback(err),
    );
    return undefined;
  }
  private async readBatch(records: unknown[], policy: Record<string, unknown>) {
    this.policies.push({ ...policy });
    if (this.failWith) throw Object.assign(new Error(this.failWith.message), this.failWith);
    return this.rows ?? records.map(() => ({ status: 2, record: {} }));
  }
  async get(key: { key: unknown }, policy: Record<string, unknown>) {
    this.gets.push({ key: key.key, policy: { ...policy } });
    if (this.getFailsWith)
      throw Object.assign(new Error(this.getFailsWith.message), this.getFailsWith);
    const bins = this.records.get(String(key.key));
    if (!bins) throw Object.assign(new Error('not found'), { code: 2 });
    return { bins };
  }
  async exists() {
    return false;
  }
  getNodes() {
    return [{ name: 'A1', address: '10.0.0.5:3000' }];
  }
  stats() {
    return { nodes: [{ name: 'A1', asyncConnections: { inUse: 2, inPool: 3 } }] };
  }
  close(releaseEventLoop?: boolean) {
    this.closed.push(releaseEventLoop);
  }
}

function fakeStore(options: Partial<AerospikeStoreOptions> = {}) {
  const client = new FakeClient();
  const configs: ConfigOptions[] = [];
  let emit: ((e: { name: string; nodeName?: string; nodeAddress?: string }) => void) | undefined;
  const { log, lines } = captureLogger();
  const store = new AerospikeProfileStore(
    {
      hosts: [{ host: '127.0.0.1', port: 3000 }],
      namespace: 'profiles',
      connectTimeoutMs: 100,
      totalTimeoutMs: 500,
      maxRetries: 1,
      ...options,
    },
    log,
    async (config, onEvent) => {
      configs.push(config);
      emit = onEvent;
      return client as unknown as Client;
    },
    () => LOOP,
  );
  return {
    store,
    client,
    configs,
    lines,
    emit: (e: Parameters<NonNullable<typeof emit>>[0]) => emit?.(e),
  };
}

function pick({ totalTimeout, socketTimeout, maxRetries }: Record<string, unknown>) {
  return { totalTimeout, socketTimeout, maxRetries };
}

const KEYS = [
  { set: '222222', id: 'a', keyType: 'string' as const },
  { set: '222222', id: 'b', keyType: 'string' as const },
];

describe('AerospikeProfileStore policies', () => {
  it('gives the batch the first share of the total timeout, the request budget shortening it', async () => {
    const { store, client } = fakeStore();
    await store.getMany(KEYS, { timeoutMs: 2_000 });
    await store.getMany(KEYS, { timeoutMs: 300 });
    // No client retry: it goes back to a failed node (see the cluster tests); we retry key by key.
    expect(client.policies.map(pick)).toEqual([
      { totalTimeout: 250, socketTimeout: 250, maxRetries: 0 },
      { totalTimeout: 150, socketTimeout: 150, maxRetries: 0 },
    ]);
  });

  it('uses a configured socket timeout, never above the attempt', async () => {
    const { store, client } = fakeStore({ socketTimeoutMs: 100, maxRetries: 0 });
    await store.getMany(KEYS, { timeoutMs: 60 });
    await store.getMany(KEYS, { timeoutMs: 500 });
    expect(client.policies.map(pick)).toEqual([
      { totalTimeout: 60, socketTimeout: 60, maxRetries: 0 },
      { totalTimeout: 500, socketTimeout: 100, maxRetries: 0 },
    ]);
  });

  it('reads each key again, in what is left of the total, when the batch fails for now', async () => {
    const { store, client } = fakeStore();
    client.failWith = { code: -6, message: 'Failed to connect: B2 10.0.0.6:3000' };
    client.records.set('a', { v: 'a' });
    const bins = await store.getMany(KEYS, { timeoutMs: 500 });
    expect(bins).toEqual([{ v: 'a' }, undefined]);
    expect(client.gets).toHaveLength(2);
    // Two attempts each (the copy the map names, then another), within what the batch left.
    const { maxRetries, totalTimeout, socketTimeout } = (client.gets[0]?.policy ?? {}) as Record<
      string,
      number
    >;
    expect(maxRetries).toBe(1);
    expect(totalTimeout).toBeLessThanOrEqual(500);
    expect(socketTimeout).toBeLessThanOrEqual((totalTimeout as number) / 2);
  });

  it('reads again only the keys whose rows failed for now', async () => {
    const { store, client } = fakeStore();
    client.rows = [
      { status: 0, record: { bins: { v: 'a' } } },
      { status: 11, record: {} },
    ];
    client.records.set('b', { v: 'b' });
    expect(await store.getMany(KEYS, { timeoutMs: 500 })).toEqual([{ v: 'a' }, { v: 'b' }]);
    expect(client.gets.map((g) => g.key)).toEqual(['b']);
  });

  it('does not read again when the batch was refused for good', async () => {
    const { store, client } = fakeStore();
    client.failWith = { code: 81, message: 'Role violation' };
    await expect(store.getMany(KEYS, { timeoutMs: 500 })).rejects.toBeInstanceOf(
      ProfileStoreRejectedError,
    );
    expect(client.gets).toHaveLength(0);
  });

  it('connects with the connection limit, the idle limit, TLS files and the auth mode', async () => {
    const { store, configs } = fakeStore({
      maxConnsPerNode: 42,
      maxSocketIdleSecs: 30,
      tls: { name: 'aero.internal', ca: CA, cert: CA, key: KEY },
      authMode: 'PKI',
    });
    await store.getMany(KEYS, { timeoutMs: 500 });
    const config = configs[0] as ConfigOptions & { tls: Record<string, string> };
    expect(config).toMatchObject({
      hosts: [{ addr: '127.0.0.1', port: 3000, tlsname: 'aero.internal' }],
      maxConnsPerNode: 42,
      maxSocketIdle: 30,
      authMode: 3, // Aerospike.auth.AUTH_PKI
      connTimeoutMs: 100,
    });
    const { readFileSync, statSync } = await import('node:fs');
    expect(readFileSync(config.tls.cafile as string, 'utf8')).toBe(CA);
    expect(readFileSync(config.tls.keyfile as string, 'utf8')).toBe(KEY);
    expect(statSync(config.tls.keyfile as string).mode & 0o077).toBe(0);
  });

  it('classifies failures: unavailable for now, or rejected for good', async () => {
    const { store, client } = fakeStore();
    client.failWith = { code: 20, message: 'Namespace not found' };
    const rejected = await store.getMany(KEYS, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(ProfileStoreRejectedError);
    expect(String((rejected as Error).message)).toMatch(/code 20 .*namespace not found/);
    client.failWith = { code: 9, message: 'Client timeout' };
    client.getFailsWith = { code: 9, message: 'Client timeout' };
    const timeout = await store.getMany(KEYS, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(timeout).toBeInstanceOf(BackendUnavailableError);
    // A timeout says how late the event loop ran, to tell a busy instance from a slow cluster.
    expect((timeout as Error).message).toMatch(/code 9 .*event loop delay p99 2 ms, max 3 ms/);
  });

  it('rejects a key the client cannot build', async () => {
    const { store } = fakeStore();
    const err = await store
      .getMany([{ set: 's'.repeat(80), id: 'a', keyType: 'string' }], { timeoutMs: 500 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileStoreRejectedError);
    expect((err as Error).message).toMatch(/key cannot be built/);
  });
});

describe('AerospikeProfileStore connection', () => {
  it('never connects for a health ping, and says so without a call', async () => {
    const { store, configs } = fakeStore();
    await expect(store.ping({ timeoutMs: 100, connect: false })).rejects.toThrow(/not connected/);
    expect(configs).toHaveLength(0);
    expect(store.detail()).toMatchObject({ connected: false, nodes: [], eventLoopDelay: LOOP });
  });

  it('pings over an open connection and shows the nodes with their connections', async () => {
    const { store, configs } = fakeStore({ maxConnsPerNode: 64 });
    await store.getMany(KEYS, { timeoutMs: 500 });
    await expect(store.ping({ timeoutMs: 100, connect: false })).resolves.toBeUndefined();
    expect(configs).toHaveLength(1);
    expect(store.detail()).toMatchObject({
      connected: true,
      nodes: [{ name: 'A1', address: '10.0.0.5:3000', inUse: 2, inPool: 3 }],
      maxConnsPerNode: 64,
    });
  });

  it('logs cluster events and keeps the recent ones for /health', async () => {
    const { store, lines, emit } = fakeStore();
    await store.getMany(KEYS, { timeoutMs: 500 });
    emit({ name: 'nodeRemoved', nodeName: 'B2', nodeAddress: '10.0.0.6:3000' });
    emit({ name: 'nodeAdded', nodeName: 'B2', nodeAddress: '10.0.0.6:3000' });
    expect(lines.filter((l) => /node/.test(String(l.message)))).toMatchObject([
      {
        severity: 'WARNING',
        message: 'aerospike node removed',
        node: 'B2',
        address: '10.0.0.6:3000',
      },
      { severity: 'INFO', message: 'aerospike node added', node: 'B2' },
    ]);
    expect(store.detail().clusterEvents).toMatchObject([
      { event: 'nodeRemoved', node: 'B2', at: expect.any(String) },
      { event: 'nodeAdded', node: 'B2' },
    ]);
  });

  it('closes without releasing the event loop, and connects again afterwards', async () => {
    const { store, client, configs } = fakeStore();
    await store.getMany(KEYS, { timeoutMs: 500 });
    await store.close();
    expect(client.closed).toEqual([false]);
    expect(store.detail()).toMatchObject({ connected: false });
    await store.getMany(KEYS, { timeoutMs: 500 });
    expect(configs).toHaveLength(2);
  });

  it('bounds the lookup of a seed given by name, and fails when no seed resolves', async () => {
    const { store, configs } = fakeStore({ hosts: [{ host: 'no-such-host.invalid', port: 3000 }] });
    await expect(store.getMany(KEYS, { timeoutMs: 500 })).rejects.toThrow(
      /no seed address resolved/,
    );
    expect(configs).toHaveLength(0);
  });
});

describe('createProfileStore', () => {
  it('builds the Aerospike store from the settings', () => {
    const store = createProfileStore(
      loadProfileConfig({ ...AEROSPIKE, AEROSPIKE_MAX_CONNS_PER_NODE: '7' }),
    );
    expect(store.name).toBe('aerospike');
    expect(store.detail?.()).toMatchObject({ connected: false, maxConnsPerNode: 7 });
  });
});

describe('EventLoopDelayMonitor', () => {
  it('shows a loop held by synchronous work', async () => {
    const monitor = new EventLoopDelayMonitor();
    try {
      await new Promise((r) => setTimeout(r, 30));
      const until = performance.now() + 200;
      while (performance.now() < until) {
        // Holding the loop, as a burst of synchronous request work would.
      }
      await new Promise((r) => setTimeout(r, 30));
      const figures = monitor.read();
      // A lower bound only: a busy machine can make the delay longer, never shorter.
      expect(figures.maxMs).toBeGreaterThanOrEqual(150);
      expect(figures.samples).toBeGreaterThan(0);
      expect(figures.p50Ms).toBeLessThanOrEqual(figures.maxMs);
    } finally {
      monitor.disable();
    }
  });

  it('reads zeros, not NaN, before the first sample', () => {
    const monitor = new EventLoopDelayMonitor();
    try {
      expect(monitor.read()).toMatchObject({ p50Ms: 0, p99Ms: 0, maxMs: 0, samples: 0 });
    } finally {
      monitor.disable();
    }
  });
});
