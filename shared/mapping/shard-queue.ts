import type { PubSub, v1 } from '@google-cloud/pubsub';
import { z } from 'zod';
import { untilAborted, withDeadline } from '../deadline.js';
import { BackendUnavailableError } from '../errors.js';

/** A shard to write, as the queue carries it (the worker reads the plan itself). */
export interface ShardMessage {
  readonly planId: string;
  readonly partition: string;
  readonly shard: number;
}

export const shardMessageSchema = z
  .object({
    planId: z.string().regex(/^[0-9a-f]{16}$/),
    partition: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    shard: z.number().int().min(0).max(10_000_000),
  })
  .strict();

/** A shard message Pub/Sub gave up on, as the dead-letter subscription holds it. */
export interface DeadLetter {
  /** undefined: not a shard message (the drain acknowledges it all the same, and logs it). */
  readonly message: ShardMessage | undefined;
  /** Pub/Sub's delivery count when it gave up. */
  readonly deliveryAttempts: number;
}

/** How shards reach the workers: a managed queue (Pub/Sub push), never a scheduler of ours. */
export interface ShardQueue {
  /** Publishes one message per shard; resolves once Pub/Sub has them all. */
  publish(messages: readonly ShardMessage[], signal: AbortSignal): Promise<void>;
  /** Pulls and acknowledges up to `max` dead-lettered messages (none: no dead-letter subscription). */
  drainDeadLetters(max: number, signal: AbortSignal): Promise<DeadLetter[]>;
  close(): Promise<void>;
}

/** Every Pub/Sub call is bounded by this. */
const CALL_TIMEOUT_MS = 30_000;

/**
 * Shards through Pub/Sub (the official client; PUBSUB_EMULATOR_HOST honoured): published to
 * `topic`, pushed by its subscription to the shard workers, dead-lettered after the
 * subscription's maximum delivery attempts to a topic whose pull subscription `deadLetters` this
 * drains. Topic and subscriptions are full resource names; deploy.sh creates them.
 */
export class PubSubShardQueue implements ShardQueue {
  private client: Promise<PubSub> | undefined;
  private subscriber: Promise<v1.SubscriberClient> | undefined;

  constructor(
    private readonly topic: string,
    private readonly deadLetters: string | undefined,
  ) {}

  async publish(messages: readonly ShardMessage[], signal: AbortSignal): Promise<void> {
    if (messages.length === 0) return;
    const pubsub = await this.pubsub();
    const topic = pubsub.topic(this.topic, {
      batching: { maxMessages: 100, maxMilliseconds: 10 },
      gaxOpts: { timeout: CALL_TIMEOUT_MS },
    });
    try {
      await untilAborted(
        withDeadline(
          Promise.all(messages.map((message) => topic.publishMessage({ json: message }))),
          CALL_TIMEOUT_MS * 2,
          () =>
            new Error(`publishing ${messages.length} shards took over ${CALL_TIMEOUT_MS * 2} ms`),
        ),
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new BackendUnavailableError('pubsub', `publishing shards to ${this.topic} failed`, {
        cause: err,
      });
    } finally {
      await topic.flush().catch(() => undefined);
    }
  }

  async drainDeadLetters(max: number, signal: AbortSignal): Promise<DeadLetter[]> {
    if (!this.deadLetters) return [];
    const subscription = this.deadLetters;
    this.subscriber ??= this.pubsub().then(
      async (pubsub) =>
        // The configuration the client gives its own GAPIC clients (the emulator's included).
        new (await import('@google-cloud/pubsub')).v1.SubscriberClient(
          (await pubsub.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0],
        ),
    );
    const subscriber = await this.subscriber;
    const drained: DeadLetter[] = [];
    try {
      while (drained.length < max) {
        // returnImmediately (discouraged for consumers that poll, which this one is not): the
        // subscription is empty on most runs, and a pull on it otherwise waits for messages.
        const [response] = await untilAborted(
          subscriber.pull(
            {
              subscription,
              maxMessages: Math.min(100, max - drained.length),
              returnImmediately: true,
            },
            { timeout: CALL_TIMEOUT_MS },
          ),
          signal,
        );
        const received = response.receivedMessages ?? [];
        if (received.length === 0) break;
        for (const { message } of received) {
          drained.push({
            message: parseShardMessage(message?.data),
            deliveryAttempts: Number(
              message?.attributes?.CloudPubSubDeadLetterSourceDeliveryCount ?? 0,
            ),
          });
        }
        const ackIds = received.map((r) => r.ackId).filter((id): id is string => Boolean(id));
        await untilAborted(
          subscriber.acknowledge({ subscription, ackIds }, { timeout: CALL_TIMEOUT_MS }),
          signal,
        );
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new BackendUnavailableError('pubsub', `draining ${subscription} failed`, {
        cause: err,
      });
    }
    return drained;
  }

  async close(): Promise<void> {
    const subscriber = await this.subscriber?.catch(() => undefined);
    await subscriber?.close().catch(() => undefined);
    const pubsub = await this.client?.catch(() => undefined);
    await pubsub?.close().catch(() => undefined);
  }

  private pubsub(): Promise<PubSub> {
    // The project is the topic's (a full name); the client only needs one to start.
    const projectId = this.topic.split('/')[1];
    this.client ??= import('@google-cloud/pubsub').then(({ PubSub }) => new PubSub({ projectId }));
    return this.client;
  }
}

/** A shard message from its bytes (Pub/Sub data), or undefined when it is not one. */
export function parseShardMessage(
  data: Uint8Array | string | null | undefined,
): ShardMessage | undefined {
  if (data === null || data === undefined) return undefined;
  try {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    const parsed = shardMessageSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
