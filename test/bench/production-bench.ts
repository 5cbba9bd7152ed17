// (n) The production path: the profile function on the Aerospike store against its production
// ceiling (aerospike-ceiling-function.mjs: the same batch read of the same keys and the same
// answer bytes, nothing else), both reading from the Aerospike test server in its own process.
// The test server runs in JavaScript on the same cores, so the figure is each function process's
// own CPU per request (the server's excluded), in alternating rounds; req/s beside it.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Aerospike from 'aerospike';
import { defaultIdTypeRegistry } from '../../shared/id-types.js';
import type { EmbeddedProfileRecord } from '../../shared/profiles/embedded-profile-store.js';
import { startChildServer } from './child-server.js';
import { startFunction } from './function-process.js';
import { type DemoPaths, inRounds } from './http-bench.js';
import { load } from './http-load.js';

/** Seeds the Aerospike test server with the demo profiles. */
async function seed(host: string, port: number, profiles: readonly EmbeddedProfileRecord[]) {
  const client = await Aerospike.connect({
    hosts: [{ addr: host, port }],
    log: { level: Aerospike.log.OFF },
  });
  // Batches of 50: the client allows 100 async connections per node by default.
  for (let i = 0; i < profiles.length; i += 50) {
    await Promise.all(
      profiles.slice(i, i + 50).map((p) => {
        const key = p.keyType === 'integer' ? BigInt(p.key) : p.key;
        return client.put(
          new Aerospike.Key('profiles', p.set, key),
          p.bins as Record<string, never>,
        );
      }),
    );
  }
  client.close(false);
}

/**
 * Runs the profile function (PROFILE_STORE=aerospike) and its production ceiling on `ids` (the
 * issue's experiment: 1,000 random demo ids), 32 connections, in alternating rounds.
 */
export async function benchProduction(
  demo: DemoPaths,
  profiles: readonly EmbeddedProfileRecord[],
  ids: readonly string[],
  work: string,
  seconds: number,
  connections = 32,
) {
  const server = await startChildServer<{ host: string; port: number }>('aerospike');
  try {
    const { host, port } = server.info;
    await seed(host, port, profiles);
    const env = {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      PROFILE_STORE: 'aerospike',
      AEROSPIKE_HOSTS: `${host}:${port}`,
    };
    const profile = await startFunction('profile', env);
    try {
      const paths = ids.map((id) => `/?id=${encodeURIComponent(id)}`);
      // What the profile function reads and answers for each path: the ceiling's plan.
      const registry = defaultIdTypeRegistry();
      const plan: {
        path: string;
        keys: [string, string, string][];
        at: number;
        length: number;
        headers: Record<string, string>;
      }[] = [];
      const bodies: Buffer[] = [];
      let at = 0;
      for (const path of paths) {
        const res = await fetch(`${profile.url}${path}`);
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200) throw new Error(`profile answered ${res.status} to ${path}`);
        const answer = JSON.parse(body.toString()) as Record<string, { type: string }>;
        const keys = Object.entries(answer).map(([id, entry]): [string, string, string] => {
          const type = registry.byName(entry.type);
          if (!type) throw new Error(`unknown type ${entry.type}`);
          return [type.code, id, type.keyType];
        });
        // Its headers as they went out, but those Node writes for any answer.
        const headers: Record<string, string> = {};
        for (const [name, value] of res.headers) {
          if (!['content-length', 'date', 'connection', 'keep-alive'].includes(name)) {
            headers[name] = value;
          }
        }
        plan.push({ path, keys, at, length: body.length, headers });
        bodies.push(body);
        at += body.length;
      }
      const planPath = join(work, 'ceiling-plan.json');
      const bodiesPath = join(work, 'ceiling-bodies.bin');
      await writeFile(planPath, JSON.stringify(plan));
      await writeFile(bodiesPath, Buffer.concat(bodies));
      const ceiling = await startFunction(
        'ceiling',
        { ...env, CEILING_PLAN_PATH: planPath, CEILING_BODIES_PATH: bodiesPath },
        new URL('./aerospike-ceiling-function.mjs', import.meta.url).pathname,
      );
      try {
        await load(`${profile.url}/`, connections, 2, paths);
        await load(`${ceiling.url}/`, connections, 2, paths);
        const compared = await inRounds(
          { f: profile, paths },
          { f: ceiling, paths },
          connections,
          seconds,
        );
        const { first, second } = compared;
        return {
          profile: first,
          ceiling: second,
          /** Median over the rounds of the ceiling's CPU per request over the profile's. */
          cpuRatio: compared.cpuRatio,
          cpuRatios: compared.cpuRatios,
          reqRatio: compared.ratio,
        };
      } finally {
        await ceiling.stop();
      }
    } finally {
      await profile.stop();
    }
  } finally {
    await server.stop();
  }
}
