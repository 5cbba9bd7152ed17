import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type {
  AerospikeMode,
  AerospikeStats,
  ControlReply,
  ControlRequest,
  RawRecord,
  SeedKey,
  SeedRecord,
  SeedValue,
} from './aerospike-server.js';

export type {
  AerospikeMode,
  AerospikeStats,
  RawParticle,
  RawRecord,
  SeedKey,
  SeedRecord,
  SeedValue,
} from './aerospike-server.js';

// Distributes over the union so each request shape keeps its own fields.
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * A single-node in-memory Aerospike server for tests. It runs in a worker thread because the
 * client's connect() blocks the calling thread inside C code until the server has answered.
 */
export class AerospikeEmulator {
  readonly host = '127.0.0.1';
  readonly port: number;
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exited = false;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker, port: number) {
    this.#worker = worker;
    this.port = port;
    worker.on('message', (reply: ControlReply) => {
      if (reply.kind === 'ready') return;
      const pending = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.kind === 'reply') pending?.resolve(reply.value);
      else pending?.reject(new Error(`aerospike emulator: ${reply.message}`));
    });
    worker.on('error', (error) => this.#failAll(error));
    worker.on('exit', (code) => {
      this.#exited = true;
      this.#failAll(new Error(`aerospike emulator worker exited with code ${code}`));
    });
  }

  /** Starts a server on an ephemeral port; namespaces default to `profiles` and `test`. */
  static async start(options: { namespaces?: string[] } = {}): Promise<AerospikeEmulator> {
    const namespaces = options.namespaces ?? ['profiles', 'test'];
    // Plain Node loads the .ts file itself (type stripping), outside vitest's module graph.
    const worker = new Worker(new URL('./aerospike-server.ts', import.meta.url), {
      workerData: { namespaces },
    });
    try {
      // events.once rejects if the worker fails to load and removes only its own listener.
      const [ready] = (await once(worker, 'message')) as [ControlReply];
      if (ready.kind !== 'ready') throw new Error('aerospike emulator: unexpected first message');
      return new AerospikeEmulator(worker, ready.port);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /** Switches how the server treats traffic from now on (existing connections included). */
  async setMode(mode: AerospikeMode): Promise<void> {
    await this.#call({ op: 'setMode', mode });
  }

  /** Counters since start or the last resetStats(). */
  async stats(): Promise<AerospikeStats> {
    return (await this.#call({ op: 'stats' })) as AerospikeStats;
  }

  /** Zeroes the counters. */
  async resetStats(): Promise<void> {
    await this.#call({ op: 'resetStats' });
  }

  /** Live records in a namespace, optionally only those written with the given set name. */
  async recordCount(namespace: string, set?: string): Promise<number> {
    return (await this.#call({ op: 'recordCount', namespace, set })) as number;
  }

  /**
   * Writes one record by typed key, as client.put with default policies would (bins merge into a
   * live record, a null bin deletes that bin), with bins encoded exactly as the client encodes them.
   */
  async put(
    namespace: string,
    set: string,
    key: SeedKey,
    bins: Record<string, SeedValue>,
    options: { ttlSecs?: number } = {},
  ): Promise<void> {
    await this.#call({ op: 'seed', namespace, records: [{ set, key, bins, ...options }] });
  }

  /** Writes many records in one control call; on bad input nothing is written. */
  async putMany(namespace: string, records: readonly SeedRecord[]): Promise<void> {
    await this.#call({ op: 'seed', namespace, records: [...records] });
  }

  /** The record digest (hex) the client computes for this set ('' for none) and typed key. */
  async digestOf(set: string, key: SeedKey): Promise<string> {
    return (await this.#call({ op: 'digestOf', set, key })) as string;
  }

  /** The stored bytes of a live record, by digest (hex); undefined when there is none. */
  async rawRecord(namespace: string, digest: string): Promise<RawRecord | undefined> {
    return (await this.#call({ op: 'rawRecord', namespace, digest })) as RawRecord | undefined;
  }

  /** Closes the listener and every connection, then ends the worker. Safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#exited ? Promise.resolve() : this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    try {
      await this.#call({ op: 'close' });
    } finally {
      await this.#worker.terminate();
    }
  }

  #call(call: WithoutId<ControlRequest>): Promise<unknown> {
    if (this.#exited) return Promise.reject(new Error('aerospike emulator is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...call, id } as ControlRequest);
    });
  }

  #failAll(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
