import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type {
  AerospikeMode,
  AerospikeStats,
  ClusterView,
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
  ClusterView,
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

/** How many nodes, and how the cluster behaves when one goes away. */
export interface AerospikeEmulatorOptions {
  /** Namespaces, `profiles` and `test` by default. */
  namespaces?: string[];
  /** Nodes in the cluster (1 by default), each on its own port. */
  nodes?: number;
  /** Copies of each partition (2 by default; never more than the nodes). */
  replicationFactor?: number;
  /** How long the other nodes take to drop a node that stopped answering (1,500 ms, as real). */
  heartbeatTimeoutMs?: number;
}

/**
 * An in-memory Aerospike server for tests: one node, or a cluster of several with a partition
 * map and replicas as real nodes advertise them. It runs in a worker thread because the client's
 * connect() blocks the calling thread inside C code until the server has answered.
 */
export class AerospikeEmulator {
  readonly host = '127.0.0.1';
  /** Node 0's port. */
  readonly port: number;
  /** Every node's port, by node index. */
  readonly ports: readonly number[];
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exited = false;
  #closing: Promise<void> | undefined;

  private constructor(worker: Worker, ports: number[]) {
    this.#worker = worker;
    this.ports = ports;
    this.port = ports[0] as number;
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

  /** Starts the nodes on ephemeral ports. */
  static async start(options: AerospikeEmulatorOptions = {}): Promise<AerospikeEmulator> {
    const namespaces = options.namespaces ?? ['profiles', 'test'];
    // Plain Node loads the .ts file itself (type stripping), outside vitest's module graph.
    const worker = new Worker(new URL('./aerospike-server.ts', import.meta.url), {
      workerData: { ...options, namespaces },
    });
    try {
      // events.once rejects if the worker fails to load and removes only its own listener.
      const [ready] = (await once(worker, 'message')) as [ControlReply];
      if (ready.kind !== 'ready') throw new Error('aerospike emulator: unexpected first message');
      return new AerospikeEmulator(worker, ready.ports);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /** Switches how a node (0 by default) treats traffic from now on, existing connections too. */
  async setMode(mode: AerospikeMode, node = 0): Promise<void> {
    await this.#call({ op: 'setMode', mode, node });
  }

  /** A node's counters since start or the last resetStats(). */
  async stats(node = 0): Promise<AerospikeStats> {
    return (await this.#call({ op: 'stats', node })) as AerospikeStats;
  }

  /** Zeroes a node's counters. */
  async resetStats(node = 0): Promise<void> {
    await this.#call({ op: 'resetStats', node });
  }

  /**
   * Stops a node: killed (connections dropped, port closed, as a crashed process) or stopped
   * gracefully (connections closed after what they were sent). The others drop it from the
   * cluster after the heartbeat timeout.
   */
  async stopNode(node: number, { graceful = false } = {}): Promise<void> {
    await this.#call({ op: 'stopNode', node, graceful });
  }

  /** Starts a stopped node on its port again; resolves once it has rejoined and listens. */
  async startNode(node: number): Promise<void> {
    await this.#call({ op: 'startNode', node });
  }

  /** Cuts a node off: its sockets stay open but it answers nothing (a network partition). */
  async isolateNode(node: number): Promise<void> {
    await this.#call({ op: 'isolateNode', node });
  }

  /** Ends a node's isolation: it answers and rejoins. */
  async healNode(node: number): Promise<void> {
    await this.#call({ op: 'healNode', node });
  }

  /** Membership, generations and ports as the nodes advertise them. */
  async clusterView(): Promise<ClusterView> {
    return (await this.#call({ op: 'clusterView' })) as ClusterView;
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
