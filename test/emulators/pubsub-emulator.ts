/*
 * Google's own Pub/Sub emulator (the one google-cloud-cli ships: `gcloud beta emulators pubsub
 * start` wraps the same script), started on a free port for a test and stopped after it. It
 * runs on the machine's Java. Machines without google-cloud-cli have no Pub/Sub emulator: tests
 * that need it skip, saying what they skip (pubsubEmulatorMissing).
 * Checked here: push subscriptions POST the wrapped push format and take a 2xx as the ack, a
 * retry policy's back-off applies between redeliveries, a dead-letter policy forwards a message
 * after its maximum delivery attempts (attributes CloudPubSubDeadLetterSource*), a push answered
 * after the ack deadline is delivered again meanwhile. It does not send `deliveryAttempt` in push
 * bodies (real Pub/Sub does when a dead-letter policy is set), and pushes about two at a time.
 * The emulator keeps everything in memory: every start is empty.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';

const GCLOUD_EMULATOR =
  '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';

/** The emulator's start script: PUBSUB_EMULATOR_BIN, else google-cloud-cli's. */
function binary(): string | undefined {
  const explicit = process.env.PUBSUB_EMULATOR_BIN;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  return existsSync(GCLOUD_EMULATOR) ? GCLOUD_EMULATOR : undefined;
}

/** Why Pub/Sub tests cannot run here, or undefined when they can. */
export function pubsubEmulatorMissing(): string | undefined {
  if (binary()) return undefined;
  return (
    'no Pub/Sub emulator on this machine (google-cloud-cli with its pubsub emulator, or ' +
    'PUBSUB_EMULATOR_BIN): the shard dispatch through Pub/Sub is NOT tested here'
  );
}

/** A running emulator; `host` is what PUBSUB_EMULATOR_HOST takes. */
export class PubSubEmulator {
  private constructor(
    private readonly child: ChildProcess,
    readonly host: string,
  ) {}

  /** Starts an emulator on a free port (about 3 s: a JVM). */
  static async start(): Promise<PubSubEmulator> {
    const bin = binary();
    if (!bin) throw new Error(pubsubEmulatorMissing());
    const port = await freePort();
    const child = spawn(bin, ['--host=127.0.0.1', `--port=${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: the script starts java, and both must go on close().
      detached: true,
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`Pub/Sub emulator did not start: ${out.slice(-2_000)}`)),
        60_000,
      );
      const onData = (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (/Server started, listening on/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Pub/Sub emulator exited with ${code}: ${out.slice(-2_000)}`));
      });
    });
    child.stdout?.resume();
    child.stderr?.resume();
    return new PubSubEmulator(child, `127.0.0.1:${port}`);
  }

  /** The REST endpoint, for what the client library does not cover. */
  get restUrl(): string {
    return `http://${this.host}/v1`;
  }

  async close(): Promise<void> {
    const { child } = this;
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // The script and the JVM it started: the whole group (ours alone: it was started detached).
    process.kill(-child.pid, 'SIGTERM');
    await exited;
  }
}
