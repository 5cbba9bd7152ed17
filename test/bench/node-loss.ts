// Failed reads while an Aerospike node is lost under load: the profile store's batch reads (what
// each profile request makes), RETRY=own (ours, the default) or RETRY=client (the client's own
// batch retry, as before), 32 in flight, a node killed (SIGKILL) a third of the way through.
//
//   node_modules/.bin/tsx test/bench/node-loss.ts                       # our 2-node test cluster
//   AEROSPIKE_HOSTS=127.0.0.1:3101,127.0.0.1:3102 KILL_PID=1234 \
//     node_modules/.bin/tsx test/bench/node-loss.ts                     # a real cluster, by hand
//
// Settings: SECONDS (30), CONCURRENCY (32), KEYS per read (8), RECORDS seeded (2000), RETRY.
import Aerospike from 'aerospike';
import { AerospikeProfileStore } from '../../shared/profiles/aerospike-profile-store.js';
import type { ProfileBins } from '../../shared/profiles/profile-store.js';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';

const env = process.env;
const SECONDS = Number(env.SECONDS ?? 30);
const CONCURRENCY = Number(env.CONCURRENCY ?? 32);
const KEYS = Number(env.KEYS ?? 8);
const RECORDS = Number(env.RECORDS ?? 2_000);
const RETRY = env.RETRY === 'client' ? 'client' : 'own';
const SET = '222222';

const emulator = env.AEROSPIKE_HOSTS
  ? undefined
  : await AerospikeEmulator.start({ nodes: 2, replicationFactor: 2 });
const hosts = (env.AEROSPIKE_HOSTS ?? emulator?.ports.map((p) => `127.0.0.1:${p}`).join(','))
  ?.split(',')
  .map((h) => ({ host: h.split(':')[0] as string, port: Number(h.split(':')[1] ?? 3000) }));
if (!hosts) throw new Error('no hosts');

const ids = Array.from({ length: RECORDS }, (_, i) => `node-loss-${i}`);
const seeder = await Aerospike.connect({
  hosts: hosts.map((h) => ({ addr: h.host, port: h.port })),
  log: { level: Aerospike.log.OFF },
});
for (let i = 0; i < ids.length; i += 50) {
  await Promise.all(
    ids.slice(i, i + 50).map((id) => seeder.put(new Aerospike.Key('profiles', SET, id), { v: id })),
  );
}
seeder.close(false);

const events: string[] = [];
const store = new AerospikeProfileStore(
  {
    hosts,
    namespace: 'profiles',
    connectTimeoutMs: 1_000,
    totalTimeoutMs: 500,
    maxRetries: 1,
    // As before this change for the client's retry: 200 ms per attempt.
    ...(RETRY === 'client' ? { socketTimeoutMs: 200 } : {}),
    retry: RETRY,
  },
  {
    debug: () => undefined,
    info: (m, f) => events.push(`${new Date().toISOString()} ${m} ${String(f?.node ?? '')}`),
    warn: (m, f) => events.push(`${new Date().toISOString()} ${m} ${String(f?.node ?? '')}`),
    error: () => undefined,
    child() {
      return this;
    },
  },
);

let ok = 0;
let wrong = 0;
let slowest = 0;
const failures = new Map<string, number>();
const stopAt = performance.now() + SECONDS * 1000;
async function loop(): Promise<void> {
  while (performance.now() < stopAt) {
    const pick = Array.from({ length: KEYS }, () => ids[Math.floor(Math.random() * ids.length)]);
    const started = performance.now();
    try {
      const bins = await store.getMany(
        pick.map((id) => ({ set: SET, id: id as string, keyType: 'string' as const })),
        { timeoutMs: 1_500 },
      );
      if (bins.every((b: ProfileBins | undefined, i) => b?.v === pick[i])) ok++;
      else wrong++;
    } catch (err) {
      const reason = (err as Error).message.replace(/127\.0\.0\.1:\d+/, 'node').slice(0, 80);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
    }
    slowest = Math.max(slowest, performance.now() - started);
  }
}

const killer = (async () => {
  await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
  events.push(`${new Date().toISOString()} killing a node`);
  if (env.KILL_PID) process.kill(Number(env.KILL_PID), 'SIGKILL');
  else await emulator?.stopNode(1);
})();
await Promise.all([...Array.from({ length: CONCURRENCY }, loop), killer]);
const failed = [...failures.values()].reduce((a, b) => a + b, 0);
const total = ok + wrong + failed;
console.log(
  `node-loss: RETRY=${RETRY}, ${CONCURRENCY} in flight, ${KEYS} keys per read, ${SECONDS} s`,
);
console.log(
  `reads: ${total}, failed: ${failed} (${((100 * failed) / total).toFixed(3)} %), wrong answers: ${wrong}, slowest: ${Math.round(slowest)} ms`,
);
for (const [reason, count] of failures) console.log(`  ${count} x ${reason}`);
for (const e of events) console.log(`  ${e}`);
await store.close();
await emulator?.close();
