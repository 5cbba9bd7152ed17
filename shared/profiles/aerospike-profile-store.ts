import type * as AerospikeModule from 'aerospike';
import type { Client, ConfigOptions } from 'aerospike';
import { BackendUnavailableError } from '../errors.js';
import type { ProfileBins, ProfileKey, ProfileStore, StoreCallOptions } from './profile-store.js';

/** Where the cluster is and how long each call may take. */
export interface AerospikeStoreOptions {
  /** `host:port` seeds. */
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  readonly namespace: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly connectTimeoutMs: number;
  /** Per attempt. */
  readonly socketTimeoutMs: number;
  /** Whole call, retries included; the request's remaining budget may shorten it. */
  readonly totalTimeoutMs: number;
  readonly maxRetries: number;
}

/** Opens a client; injected in tests, `Aerospike.connect` otherwise. */
export type AerospikeConnect = (config: ConfigOptions) => Promise<Client>;

type Lib = (typeof AerospikeModule)['default'];
// The native addon loads on first use only: the embedded default must run without it.
let lib: Promise<Lib> | undefined;
const loadLib = (): Promise<Lib> => {
  lib ??= import('aerospike').then((m) => m.default);
  return lib;
};

const RECORD_NOT_FOUND = 2;
const CONNECT_RETRY_MIN_MS = 500;
const CONNECT_RETRY_MAX_MS = 15_000;

/**
 * The production profile store: one batch read per request across the sets named by the id
 * types' codes. The client is created on first use and reused; a failed connect is retried by a
 * later call after a short back-off (connect blocks the event loop inside the C client, so an
 * outage must not make every request pay for it).
 */
export class AerospikeProfileStore implements ProfileStore {
  readonly name = 'aerospike';
  private clientPromise: Promise<Client> | undefined;
  private connectFailures = 0;
  private nextConnectAt = 0;

  constructor(
    private readonly options: AerospikeStoreOptions,
    private readonly connect: AerospikeConnect = async (config) =>
      (await loadLib()).connect(config),
  ) {}

  async getMany(
    keys: readonly ProfileKey[],
    call: StoreCallOptions,
  ): Promise<(ProfileBins | undefined)[]> {
    if (keys.length === 0) return [];
    const client = await this.client();
    const Aerospike = await loadLib();
    const policy = new Aerospike.BatchPolicy(this.timeouts(call.timeoutMs));
    const { namespace } = this.options;
    let results: AerospikeModule.BatchResult[];
    try {
      results = await client.batchRead(
        keys.map((k) => ({
          key: new Aerospike.Key(namespace, k.set, userKey(k)),
          readAllBins: true,
        })),
        policy,
      );
    } catch (err) {
      throw new BackendUnavailableError('aerospike', `batch read failed: ${codeOf(err)}`, {
        cause: err,
      });
    }
    return results.map((r) => {
      if (r.status === Aerospike.status.OK) return (r.record.bins ?? {}) as ProfileBins;
      if (r.status === RECORD_NOT_FOUND) return undefined;
      throw new BackendUnavailableError('aerospike', `batch read record status ${r.status}`);
    });
  }

  async ping(call: StoreCallOptions): Promise<void> {
    const client = await this.client();
    const Aerospike = await loadLib();
    try {
      // A key nobody writes: "not found" is an answer, which is all a ping needs.
      await client.exists(
        new Aerospike.Key(this.options.namespace, null, 'profile-api-ping'),
        new Aerospike.ReadPolicy(this.timeouts(call.timeoutMs)),
      );
    } catch (err) {
      throw new BackendUnavailableError('aerospike', `ping failed: ${codeOf(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    const pending = this.clientPromise;
    this.clientPromise = undefined;
    const client = await pending?.catch(() => undefined);
    client?.close(true);
  }

  private client(): Promise<Client> {
    if (this.clientPromise) return this.clientPromise;
    const now = Date.now();
    if (now < this.nextConnectAt) {
      return Promise.reject(
        new BackendUnavailableError('aerospike', 'not connected; retrying shortly'),
      );
    }
    const { hosts, user, password, connectTimeoutMs } = this.options;
    const config: ConfigOptions = {
      hosts: hosts.map((h) => ({ addr: h.host, port: h.port })),
      connTimeoutMs: connectTimeoutMs,
      // Our own logs say what failed; the C client's would print every timeout at ERROR (OFF = -1).
      log: { level: -1 },
      ...(user && password ? { user, password } : {}),
    };
    this.clientPromise = this.connect(config).then(
      (client) => {
        this.connectFailures = 0;
        return client;
      },
      (err: unknown) => {
        this.clientPromise = undefined;
        this.connectFailures++;
        const backoff = CONNECT_RETRY_MIN_MS * 2 ** Math.min(this.connectFailures - 1, 10);
        this.nextConnectAt = Date.now() + Math.min(backoff, CONNECT_RETRY_MAX_MS);
        throw new BackendUnavailableError('aerospike', `connect failed: ${codeOf(err)}`, {
          cause: err,
        });
      },
    );
    return this.clientPromise;
  }

  private timeouts(budgetMs: number) {
    const total = Math.max(1, Math.min(this.options.totalTimeoutMs, budgetMs));
    return {
      totalTimeout: total,
      socketTimeout: Math.min(this.options.socketTimeoutMs, total),
      maxRetries: this.options.maxRetries,
    };
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

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? `code ${code}` : 'unknown error';
}
