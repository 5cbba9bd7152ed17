import { lookup } from 'node:dns/promises';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as AerospikeModule from 'aerospike';
import type { Client, ConfigOptions } from 'aerospike';
import { BackendUnavailableError } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { BinsAsBytes } from './bins-as-bytes.js';
import { type EventLoopDelay, eventLoopDelay } from './event-loop-delay.js';
import {
  type ProfileBins,
  type ProfileKey,
  type ProfileStore,
  ProfileStoreRejectedError,
  type StoreCallOptions,
} from './profile-store.js';

/** The C client's log levels by name (Aerospike.log). */
export const AEROSPIKE_LOG_LEVELS = {
  OFF: -1,
  ERROR: 0,
  WARN: 1,
  INFO: 2,
  DEBUG: 3,
  TRACE: 4,
} as const;

/** Where the cluster is, how to reach it and how long each call may take. */
export interface AerospikeStoreOptions {
  /** `host:port` seeds (IP addresses spare a DNS lookup at connect). */
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  readonly namespace: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Enterprise: INTERNAL (default), EXTERNAL (LDAP) or PKI (the TLS client certificate). */
  readonly authMode?: 'INTERNAL' | 'EXTERNAL' | 'PKI' | undefined;
  /** Enterprise: TLS on every connection; PEM texts, written to private files for the C client. */
  readonly tls?:
    | { readonly name: string; readonly ca?: string; readonly cert?: string; readonly key?: string }
    | undefined;
  /** Per seed address, and the bound of the DNS lookup of a seed given by name. */
  readonly connectTimeoutMs: number;
  /** Per attempt; undefined: the total timeout shared by the attempts (see `timeouts`). */
  readonly socketTimeoutMs?: number | undefined;
  /** Whole call, retries included; the request's remaining budget may shorten it. */
  readonly totalTimeoutMs: number;
  readonly maxRetries: number;
  /** Async connections per node (the client's default is 100). */
  readonly maxConnsPerNode?: number | undefined;
  /** Pooled sockets idle longer than this are closed rather than used (0: not checked per command). */
  readonly maxSocketIdleSecs?: number | undefined;
  readonly logLevel?: keyof typeof AEROSPIKE_LOG_LEVELS | undefined;
  /**
   * Who retries a failed batch: we do, key by key (default), or the client (its own batch retry,
   * as before; kept to measure it: test/bench/node-loss.ts). Not a setting. See `batchPolicy`.
   */
  readonly retry?: 'own' | 'client' | undefined;
  /** The bin holding the segments (SEGMENTS_BIN); default `segments`. */
  readonly segmentsBin?: string | undefined;
  /**
   * How list and map bins are read: as their bytes, the segments bin turned into a SegmentTable
   * here (default; see raw-segments.ts and bins-as-bytes.ts), or decoded by the client, as before
   * (kept to compare the two: test/integration/aerospike-bins-as-bytes.test.ts). Not a setting.
   */
  readonly listsAndMaps?: 'bytes' | 'decoded' | undefined;
}

/** A cluster event as the client reports it (Client#event). */
export interface ClusterEvent {
  readonly name: string;
  readonly nodeName?: string;
  readonly nodeAddress?: string;
}

/** Opens a client, reporting cluster events to `onEvent`; injected in tests. */
export type AerospikeConnect = (
  config: ConfigOptions,
  onEvent: (event: ClusterEvent) => void,
) => Promise<Client>;

type Lib = (typeof AerospikeModule)['default'];
// The native addon loads on first use only: the embedded default must run without it.
let lib: Promise<Lib> | undefined;
/** The module once loaded: the request path reads it without a promise. */
let loadedLib: Lib | undefined;
const loadLib = (): Promise<Lib> => {
  lib ??= import('aerospike').then((m) => {
    loadedLib = m.default;
    return m.default;
  });
  return lib;
};

/** Creates the client, listens to its cluster events, connects; a failed connect is closed. */
const defaultConnect: AerospikeConnect = async (config, onEvent) => {
  const Aerospike = await loadLib();
  const client = Aerospike.client(config);
  client.on('event', onEvent);
  try {
    return await client.connect();
  } catch (err) {
    // Unreferences the client's event loop (which connect referenced) without releasing it for
    // good: close(true) would make every later connect throw.
    client.close(false);
    throw err;
  }
};

const OK = 0;
const RECORD_NOT_FOUND = 2;
const BATCH_FAILED = -16;
const READ_EACH_CONCURRENCY = 8;
const CONNECT_RETRY_MIN_MS = 500;
const CONNECT_RETRY_MAX_MS = 15_000;
const EVENTS_KEPT = 10;

/**
 * Status codes (as_status.h, C client 7.4.0) that a retry cannot fix: the request or the
 * configuration is wrong (namespace, security, parameters, a feature the server lacks or has
 * disabled). Every other code, and a failure without one, means "unavailable for now".
 */
const REJECTED_CODES: ReadonlyMap<number, string> = new Map([
  [-4, 'invalid host'],
  [-2, 'invalid parameter'],
  [4, 'request invalid'],
  [10, 'always forbidden'],
  [12, 'incompatible bin type'],
  [16, 'unsupported feature'],
  [20, 'namespace not found'],
  [21, 'bin name'],
  [25, 'enterprise only'],
  [51, 'security not supported'],
  [52, 'security not enabled'],
  [53, 'security scheme not supported'],
  [54, 'invalid command'],
  [55, 'invalid field'],
  [60, 'invalid user'],
  [62, 'invalid password'],
  [63, 'expired password'],
  [64, 'forbidden password'],
  [65, 'invalid credential'],
  [70, 'invalid role'],
  [72, 'invalid privilege'],
  [73, 'invalid allowlist'],
  [80, 'not authenticated'],
  [81, 'role violation'],
  [82, 'not allowlisted'],
  [150, 'batch disabled'],
  [151, 'batch max requests exceeded'],
]);

/** One batch read under way: what a retry or a second read needs of it. */
interface ReadInProgress {
  readonly client: Client;
  readonly records: readonly AerospikeModule.BatchReadRecord[];
  readonly started: number;
  readonly total: number;
  /** Whether retries are ours (see AerospikeStoreOptions.retry). */
  readonly own: boolean;
  readonly asBytes: boolean;
}

/** Whether a failure with this status code is for now (503) or for good (500, an operator acts). */
export function aerospikeFailureKind(code: number | undefined): 'unavailable' | 'rejected' {
  return code !== undefined && REJECTED_CODES.has(code) ? 'rejected' : 'unavailable';
}

/**
 * The production profile store: one batch read per request across the sets named by the id
 * types' codes. The client is created on first use and reused; a failed connect is retried by a
 * later call after a short back-off (connect blocks the event loop inside the C client, so an
 * outage must not make every request pay for it). Once connected, the client's own tend thread
 * follows the cluster (nodes lost, added, back); `/health` never opens a connection.
 */
export class AerospikeProfileStore implements ProfileStore {
  readonly name = 'aerospike';
  private clientPromise: Promise<Client> | undefined;
  private client: Client | undefined;
  private connectFailures = 0;
  private nextConnectAt = 0;
  private lastConnect:
    | { readonly at: string; readonly ms: number; readonly error?: string }
    | undefined;
  private readonly events: { at: string; event: string; node?: string; address?: string }[] = [];
  private tlsFiles: { ca?: string; cert?: string; key?: string } | undefined;
  private readonly singles: Slots;
  /** Records read with lists and maps as bytes (see listsAndMaps). */
  private readonly bytes: BinsAsBytes;

  constructor(
    private readonly options: AerospikeStoreOptions,
    private readonly log: Logger = silentLogger,
    private readonly connectClient: AerospikeConnect = defaultConnect,
    private readonly loopDelay: () => EventLoopDelay = eventLoopDelay,
  ) {
    // Sampling starts now, so that the first figures cover the instance's first requests.
    loopDelay();
    // Half of each node's connections, for key-by-key reads; batches keep the other half.
    this.singles = new Slots(Math.max(2, Math.floor((options.maxConnsPerNode ?? 100) / 2)));
    this.bytes = new BinsAsBytes(
      options.segmentsBin ?? 'segments',
      options.listsAndMaps !== 'decoded',
      log,
    );
  }

  /** The batch policy for the configured total timeout, lists and maps as bytes or decoded. */
  private readonly fullBatchPolicies: {
    bytes?: AerospikeModule.BatchPolicy;
    decoded?: AerospikeModule.BatchPolicy;
  } = {};

  getMany(
    keys: readonly ProfileKey[],
    call: StoreCallOptions,
  ): Promise<(ProfileBins | undefined)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    // Once connected, the client's promise chained once: no async function, whose promise and
    // await each cost async-hook calls of the framework's per-request domain (bench part n).
    const client = this.client;
    const Aerospike = loadedLib;
    if (client === undefined || Aerospike === undefined) return this.connectThenRead(keys, call);
    return this.read(client, Aerospike, keys, call);
  }

  private async connectThenRead(
    keys: readonly ProfileKey[],
    call: StoreCallOptions,
  ): Promise<(ProfileBins | undefined)[]> {
    const client = this.client ?? (await this.connected(call));
    const Aerospike = loadedLib ?? (await loadLib());
    return this.read(client, Aerospike, keys, call);
  }

  /** One batch read of every key (see getMany); what fails is handled by batchFailed. */
  private read(
    client: Client,
    Aerospike: Lib,
    keys: readonly ProfileKey[],
    call: StoreCallOptions,
  ): Promise<(ProfileBins | undefined)[]> {
    const { namespace } = this.options;
    let records: AerospikeModule.BatchReadRecord[];
    try {
      records = keys.map((k) => ({
        key: new Aerospike.Key(namespace, k.set, userKey(k)),
        readAllBins: true,
      }));
    } catch (err) {
      // The Key constructor refuses what no request can fix (a set name over 63 bytes...).
      return Promise.reject(
        new ProfileStoreRejectedError('aerospike', `key cannot be built: ${describe(err)}`, {
          cause: err,
        }),
      );
    }
    const started = performance.now();
    const total = this.totalTimeout(call);
    // Ours when retries are allowed at all (AEROSPIKE_MAX_RETRIES=0: none).
    const own = this.options.retry !== 'client' && this.options.maxRetries > 0;
    const asBytes = this.bytes.on;
    const read: ReadInProgress = { client, records, started, total, own, asBytes };
    return this.batch(read, this.policyFor(Aerospike, total, own, asBytes));
  }

  /**
   * One batch read of `read.records` with `policy`: the records, one per key (see received);
   * what fails is handled by batchFailed. The client's callback form, under ONE promise of
   * ours: its promise form makes one more.
   */
  private batch(
    read: ReadInProgress,
    policy: AerospikeModule.BatchPolicy,
  ): Promise<(ProfileBins | undefined)[]> {
    const { client, records } = read;
    return new Promise((resolve, reject) => {
      const failed = (err: unknown) => this.batchFailed(read, err).then(resolve, reject);
      try {
        // The client only reads the array (no copy on the hot path).
        client.batchRead(records as AerospikeModule.BatchReadRecord[], policy, (err, results) => {
          if (err) failed(err);
          else {
            try {
              resolve(this.received(read, results ?? []));
            } catch (thrown) {
              reject(thrown);
            }
          }
        });
      } catch (err) {
        failed(err);
      }
    });
  }

  /** A whole batch failed: the reason, or each key read again on its own (see batchPolicy). */
  private async batchFailed(
    read: ReadInProgress,
    err: unknown,
  ): Promise<(ProfileBins | undefined)[]> {
    const { client, records, started, total, own } = read;
    const first = records[0];
    if (codeOf(err) === BATCH_FAILED && first !== undefined) {
      // No key found a node (as_batch_records_execute in client 7.4.0): the per-key reasons,
      // an unknown namespace (for good) or no live replica (for now), are not passed on. One
      // single-key command on the same client gives the reason; a failure path only.
      const left = total - (performance.now() - started);
      throw this.failure('batch read failed', await this.probe(client, first, left, err));
    }
    const failed = this.failure('batch read failed', err);
    // The Node binding passes no record on when a node's part of a batch failed: which keys
    // were answered is lost, so each key is read again, on its own.
    if (!own || !(failed instanceof BackendUnavailableError)) throw failed;
    const again = await this.readEach(client, records, started + total, failed);
    this.log.debug('aerospike batch read again key by key', {
      keys: records.length,
      reason: failed.message,
    });
    return again;
  }

  /**
   * The batch's records, one per key (undefined: none); the keys that failed on their own, or
   * whose lists and maps must be decoded by the client, are read again (readAgain).
   */
  private received(
    read: ReadInProgress,
    results: readonly AerospikeModule.BatchResult[],
  ): (ProfileBins | undefined)[] | Promise<(ProfileBins | undefined)[]> {
    const { own, asBytes } = read;
    const bins: (ProfileBins | undefined)[] = new Array(results.length);
    const retry: number[] = [];
    const decode: number[] = [];
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as AerospikeModule.BatchResult;
      if (r.status === OK) {
        const got = (r.record.bins ?? {}) as Record<string, unknown>;
        if (!asBytes || this.bytes.take(got)) bins[i] = got;
        else decode.push(i);
      } else if (r.status === RECORD_NOT_FOUND) bins[i] = undefined;
      else {
        const failed = this.failure('batch read record failed', { code: r.status });
        if (!own || !(failed instanceof BackendUnavailableError)) throw failed;
        retry.push(i);
      }
    }
    if (asBytes) this.bytes.counted(results.length, decode.length);
    if (retry.length === 0 && decode.length === 0) return bins;
    return this.readAgain(read, bins, retry, decode);
  }

  private async readAgain(
    read: ReadInProgress,
    bins: (ProfileBins | undefined)[],
    retry: readonly number[],
    decode: readonly number[],
  ): Promise<(ProfileBins | undefined)[]> {
    const { records, started, total, own } = read;
    if (retry.length > 0) {
      // Only the keys that failed, each on its own.
      const some = retry.map((i) => records[i] as AerospikeModule.BatchReadRecord);
      const failed = new BackendUnavailableError('aerospike', 'batch read record failed');
      const again = await this.readEach(read.client, some, started + total, failed);
      for (const [j, i] of retry.entries()) bins[i] = again[j];
    }
    if (decode.length > 0) {
      // Records whose list or map bins are not of the shape taken as bytes: read again in one
      // batch, decoded by the client, within what is left of the same total.
      const left = Math.floor(started + total - performance.now());
      if (left < 1) throw new BackendUnavailableError('aerospike', 'batch read failed');
      const Aerospike = await loadLib();
      const some = decode.map((i) => records[i] as AerospikeModule.BatchReadRecord);
      const again = await this.batch(
        { ...read, records: some, asBytes: false },
        this.batchPolicy(Aerospike, Math.min(left, this.options.totalTimeoutMs), own, false),
      );
      for (const [j, i] of decode.entries()) bins[i] = again[j];
    }
    return bins;
  }

  /** The batch policy for `total` ms: made once for the configured total (nearly every call). */
  private policyFor(
    Aerospike: Lib,
    total: number,
    own: boolean,
    asBytes: boolean,
  ): AerospikeModule.BatchPolicy {
    if (total !== this.options.totalTimeoutMs) {
      return this.batchPolicy(Aerospike, total, own, asBytes);
    }
    const kind = asBytes ? 'bytes' : 'decoded';
    let policy = this.fullBatchPolicies[kind];
    if (policy === undefined) {
      policy = this.batchPolicy(Aerospike, total, own, asBytes);
      this.fullBatchPolicies[kind] = policy;
    }
    return policy;
  }

  /**
   * Reads keys one by one (at most READ_EACH_CONCURRENCY at a time) within what is left until
   * `deadline`: a single-key command retries on another copy when a node fails, which the
   * client's batch retry does not do reliably (see batchPolicy). Throws `failed` when no time
   * is left, else the first key's failure.
   */
  private async readEach(
    client: Client,
    records: readonly AerospikeModule.BatchReadRecord[],
    deadline: number,
    failed: Error,
  ): Promise<(ProfileBins | undefined)[]> {
    const Aerospike = await loadLib();
    const left = Math.floor(deadline - performance.now());
    if (left < 1) throw failed;
    const { socketTimeoutMs } = this.options;
    const policy = new Aerospike.ReadPolicy({
      totalTimeout: left,
      // Two attempts in what is left: the copy the map names, then another (the replica).
      socketTimeout: Math.max(1, Math.min(socketTimeoutMs ?? left, Math.floor(left / 2))),
      maxRetries: 1,
      replica: Aerospike.policy.replica.SEQUENCE,
    });
    const out: (ProfileBins | undefined)[] = new Array(records.length);
    let next = 0;
    const worker = async () => {
      while (next < records.length) {
        const i = next++;
        // Key-by-key reads of all requests share a part of the connections: during a node loss
        // they must not use up the surviving node's (code -7, which retries on the lost node).
        if (!(await this.singles.acquire(deadline))) throw failed;
        try {
          const record = await client.get(
            (records[i] as AerospikeModule.BatchReadRecord).key,
            policy,
          );
          out[i] = (record.bins ?? {}) as ProfileBins;
        } catch (err) {
          if (codeOf(err) === RECORD_NOT_FOUND) out[i] = undefined;
          else throw this.failure('read of a single key failed', err);
        } finally {
          this.singles.release();
        }
      }
    };
    const workers = Math.min(READ_EACH_CONCURRENCY, records.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return out;
  }

  /** The error a single-key read of `record` gets, or `fallback` when it gets none. */
  private async probe(
    client: Client,
    record: AerospikeModule.BatchReadRecord,
    timeoutMs: number,
    fallback: unknown,
  ): Promise<unknown> {
    const Aerospike = await loadLib();
    const total = Math.max(1, Math.floor(Math.min(timeoutMs, this.options.totalTimeoutMs)));
    try {
      await client.exists(
        record.key,
        new Aerospike.ReadPolicy({
          totalTimeout: total,
          replica: Aerospike.policy.replica.SEQUENCE,
        }),
      );
      return fallback;
    } catch (err) {
      return err;
    }
  }

  async ping(call: StoreCallOptions): Promise<void> {
    const client = await this.connected(call);
    const Aerospike = await loadLib();
    try {
      // A key nobody writes: "not found" is an answer, which is all a ping needs.
      await client.exists(
        new Aerospike.Key(this.options.namespace, null, 'profile-api-ping'),
        new Aerospike.ReadPolicy({
          ...this.timeouts(call),
          replica: Aerospike.policy.replica.SEQUENCE,
        }),
      );
    } catch (err) {
      throw this.failure('ping failed', err);
    }
  }

  /** The client's view of the cluster and its recent changes, without a call. */
  detail(): Readonly<Record<string, unknown>> {
    const client = this.client;
    let nodes: { name: string; address: string; inUse?: number; inPool?: number }[] = [];
    if (client) {
      const stats = new Map(client.stats().nodes.map((n) => [n.name, n.asyncConnections]));
      nodes = client.getNodes().map((n) => ({
        name: n.name,
        address: n.address,
        inUse: stats.get(n.name)?.inUse,
        inPool: stats.get(n.name)?.inPool,
      }));
    }
    return {
      connected: client !== undefined,
      nodes,
      maxConnsPerNode: this.options.maxConnsPerNode ?? 100,
      ...(this.lastConnect ? { lastConnect: this.lastConnect } : {}),
      clusterEvents: [...this.events],
      eventLoopDelay: this.loopDelay(),
    };
  }

  /** Closes the client; a later call connects again (the client's event loop is kept). */
  async close(): Promise<void> {
    const pending = this.clientPromise;
    this.clientPromise = undefined;
    this.client = undefined;
    const client = await pending?.catch(() => undefined);
    client?.close(false);
  }

  private connected(call: StoreCallOptions): Promise<Client> {
    if (this.clientPromise) return this.clientPromise;
    if (call.connect === false) {
      return Promise.reject(new BackendUnavailableError('aerospike', 'not connected'));
    }
    const now = Date.now();
    if (now < this.nextConnectAt) {
      return Promise.reject(
        new BackendUnavailableError('aerospike', 'not connected; retrying shortly'),
      );
    }
    this.clientPromise = this.open().then(
      (client) => {
        this.connectFailures = 0;
        this.client = client;
        return client;
      },
      (err: unknown) => {
        this.clientPromise = undefined;
        this.connectFailures++;
        const backoff = CONNECT_RETRY_MIN_MS * 2 ** Math.min(this.connectFailures - 1, 10);
        this.nextConnectAt = Date.now() + Math.min(backoff, CONNECT_RETRY_MAX_MS);
        throw this.failure('connect failed', err);
      },
    );
    return this.clientPromise;
  }

  /**
   * Resolves seed names off the event loop (bounded), then connects. The C client's connect runs
   * on this thread: at most one attempt per seed address, each bounded by connectTimeoutMs.
   */
  private async open(): Promise<Client> {
    const o = this.options;
    const hosts = await this.seedAddresses();
    const level = AEROSPIKE_LOG_LEVELS[o.logLevel ?? 'WARN'];
    const Aerospike = await loadLib();
    // The C client's own log (its tend thread: seeds and nodes that fail, peers...) is process
    // wide, plain text on stderr. The per-client log is the Node binding's, which prints every
    // failed command at ERROR: off, our own log says what failed, once, with its context.
    Aerospike.setDefaultLogging({ level });
    const config: ConfigOptions = {
      hosts,
      connTimeoutMs: o.connectTimeoutMs,
      log: { level: AEROSPIKE_LOG_LEVELS.OFF },
      ...(o.maxConnsPerNode !== undefined ? { maxConnsPerNode: o.maxConnsPerNode } : {}),
      ...(o.maxSocketIdleSecs !== undefined ? { maxSocketIdle: o.maxSocketIdleSecs } : {}),
      ...this.security(Aerospike),
    };
    const started = performance.now();
    const at = new Date().toISOString();
    try {
      const client = await this.connectClient(config, (event) => this.onClusterEvent(event));
      const ms = Math.round(performance.now() - started);
      this.lastConnect = { at, ms };
      this.log.info('aerospike connected', { nodes: client.getNodes(), connectMs: ms });
      return client;
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      this.lastConnect = { at, ms, error: describe(err) };
      throw err;
    }
  }

  /** Seeds as addresses: names are looked up here, in parallel and bounded, not in the C client. */
  private async seedAddresses(): Promise<{ addr: string; port: number; tlsname?: string }[]> {
    const { hosts, connectTimeoutMs, tls } = this.options;
    const resolved = await Promise.all(
      hosts.map(async ({ host }) => {
        if (isIP(host)) return [host];
        try {
          const found = await withTimeout(lookup(host, { all: true }), connectTimeoutMs);
          return found.map((a) => a.address);
        } catch (err) {
          this.log.warn('aerospike seed name did not resolve', { host, err: describe(err) });
          return [];
        }
      }),
    );
    const seeds = hosts.flatMap(({ port }, i) =>
      (resolved[i] ?? []).map((addr) => ({ addr, port, ...(tls ? { tlsname: tls.name } : {}) })),
    );
    if (seeds.length === 0) {
      throw new BackendUnavailableError('aerospike', 'no seed address resolved');
    }
    return seeds;
  }

  private security(Aerospike: Lib): Partial<ConfigOptions> {
    const { user, password, authMode, tls } = this.options;
    const config: Partial<ConfigOptions> = {};
    if (authMode === 'PKI') config.authMode = Aerospike.auth.AUTH_PKI;
    else if (authMode === 'EXTERNAL') config.authMode = Aerospike.auth.EXTERNAL;
    if (user && password && authMode !== 'PKI') Object.assign(config, { user, password });
    if (tls) {
      // The Node client takes files only (no in-memory CA): write the secrets once, private.
      if (!this.tlsFiles) {
        const dir = mkdtempSync(join(tmpdir(), 'aerospike-tls-'));
        const write = (name: string, text: string | undefined) => {
          if (text === undefined) return undefined;
          const path = join(dir, name);
          writeFileSync(path, text, { mode: 0o600 });
          return path;
        };
        this.tlsFiles = {
          ca: write('ca.pem', tls.ca),
          cert: write('cert.pem', tls.cert),
          key: write('key.pem', tls.key),
        };
      }
      const { ca, cert, key } = this.tlsFiles;
      config.tls = {
        enable: true,
        ...(ca ? { cafile: ca } : {}),
        ...(cert && key ? { certfile: cert, keyfile: key } : {}),
      };
    }
    return config;
  }

  private onClusterEvent(event: ClusterEvent): void {
    const entry = {
      at: new Date().toISOString(),
      event: event.name,
      ...(event.nodeName ? { node: event.nodeName } : {}),
      ...(event.nodeAddress ? { address: event.nodeAddress } : {}),
    };
    this.events.push(entry);
    if (this.events.length > EVENTS_KEPT) this.events.shift();
    const fields = { ...entry, nodes: this.client?.getNodes() };
    if (event.name === 'nodeAdded') this.log.info(`aerospike node added`, fields);
    else
      this.log.warn(
        `aerospike ${event.name === 'nodeRemoved' ? 'node removed' : event.name}`,
        fields,
      );
  }

  /** Our error for a failed call: for now (BackendUnavailableError) or for good (rejected). */
  private failure(what: string, err: unknown): Error {
    const code = codeOf(err);
    // With no node left the client answers "Cluster is empty" with the namespace's code (20).
    const emptyCluster = code === 20 && (this.client?.getNodes().length ?? 0) === 0;
    const message = `${what}: ${code === undefined ? 'no status code' : `code ${code}`}${
      err instanceof Error ? ` ${err.message}` : ''
    }`;
    if (aerospikeFailureKind(code) === 'rejected' && !emptyCluster) {
      return new ProfileStoreRejectedError(
        'aerospike',
        `${message} (${REJECTED_CODES.get(code as number)})`,
        { cause: err },
      );
    }
    const delay = this.loopDelay();
    // A timeout with the event loop this late is the loop's doing, not the cluster's.
    const loop =
      code === 9 ? ` (event loop delay p99 ${delay.p99Ms} ms, max ${delay.maxMs} ms)` : '';
    return new BackendUnavailableError('aerospike', `${message}${loop}`, { cause: err });
  }

  /**
   * The batch's policy. Our own retry (the default): one attempt, with the total timeout's
   * first share; on failure `readEach` uses the rest. The client's own batch retry goes wrong
   * twice when a node is lost (C client 7.4.0, unchanged in 7.5.0): as_event_command_retry and
   * as_batch_retry_async both add one to the replica index, so with two copies a retry goes back
   * to the node that failed (every batch touching a lost node failed until the client dropped
   * the node, 1.5 to 2.5 s); and when the failed node's keys are split over several nodes,
   * as_batch_retry_write writes the new batch field's size into the old command's buffer, so
   * each node gets a malformed message and answers 4 (as_transaction_prepare on the server).
   * `client` keeps the client's retry (SEQUENCE, the default replica), to measure it.
   */
  private batchPolicy(
    Aerospike: Lib,
    total: number,
    own: boolean,
    listsAsBytes: boolean,
  ): AerospikeModule.BatchPolicy {
    const { maxRetries, socketTimeoutMs } = this.options;
    const first = own && maxRetries > 0 ? Math.max(1, Math.floor(total / (maxRetries + 1))) : total;
    const share = Math.max(1, Math.floor(total / (maxRetries + 1)));
    return new Aerospike.BatchPolicy({
      totalTimeout: first,
      socketTimeout: Math.min(socketTimeoutMs ?? share, first),
      maxRetries: own ? 0 : maxRetries,
      replica: Aerospike.policy.replica.SEQUENCE,
      deserialize: !listsAsBytes,
    });
  }

  /** The whole call: the configured total timeout or what is left of the request's budget. */
  private totalTimeout(call: StoreCallOptions): number {
    return Math.max(1, Math.floor(Math.min(this.options.totalTimeoutMs, call.timeoutMs)));
  }

  /**
   * A single read's policy (ping): each attempt an equal share of the total timeout unless a
   * socket timeout is configured. A share, not a fixed 200 ms: an attempt is only cut short
   * when a retry still has time to run (on a replica), so a busy event loop that delays a reply
   * already received does not turn it into a retry that cannot finish either.
   */
  private timeouts(call: StoreCallOptions) {
    const { socketTimeoutMs, maxRetries } = this.options;
    const total = this.totalTimeout(call);
    const share = Math.max(1, Math.floor(total / (maxRetries + 1)));
    return {
      totalTimeout: total,
      socketTimeout: Math.min(socketTimeoutMs ?? share, total),
      maxRetries,
    };
  }
}

/** A counting semaphore whose waits end at a deadline. */
class Slots {
  private used = 0;
  private readonly waiting: ((granted: boolean) => void)[] = [];

  constructor(private readonly size: number) {}

  /** Resolves true once a slot is held, false if none freed up before `deadline` (performance.now). */
  acquire(deadline: number): Promise<boolean> {
    if (this.used < this.size) {
      this.used++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = (granted: boolean) => {
        clearTimeout(timer);
        resolve(granted);
      };
      const timer = setTimeout(
        () => {
          const at = this.waiting.indexOf(grant);
          if (at >= 0) this.waiting.splice(at, 1);
          resolve(false);
        },
        Math.max(0, deadline - performance.now()),
      );
      this.waiting.push(grant);
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next(true);
    else this.used--;
  }
}

/** The Aerospike user key: its type is part of the record's digest, so it must match the writer's. */
function userKey(key: ProfileKey): string | bigint {
  return key.keyType === 'integer' ? BigInt(key.id) : key.id;
}

/** `host:port,host:port` (default port 3000) as seed hosts. */
export function parseAerospikeHosts(spec: string): { host: string; port: number }[] {
  return spec.split(',').map((entry) => {
    const [host = '', port] = entry.trim().split(':');
    return { host, port: port ? Number(port) : 3000 };
  });
}

function codeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
