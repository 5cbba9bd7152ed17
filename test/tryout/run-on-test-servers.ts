// `npm run start:test-servers`: the production path on your machine, without any cloud. Starts
// the GCS, BigQuery, MongoDB and Aerospike test servers, seeds them with generated data, serves
// the functions with the production adapters (functions-framework, built code), runs the jobs
// once, and prints curls. Ctrl-C stops everything.
//   MAPPING_STORE=bigtable npm run start:test-servers
// does the same with the mapping in Google's Bigtable emulator, written by syncMapping (:7003):
// same generated data, so the two runs can be compared id by id.
import { type ChildProcess, spawn } from 'node:child_process';
import { generateDemoDataset } from '../../shared/demo/demo-dataset.js';
import { BigtableEmulator } from '../emulators/bigtable-emulator.js';
import { bigtableEnv, createMappingTable } from '../helpers/bigtable-table.js';
import { startLocalStack } from '../helpers/local-stack.js';

const onBigtable = process.env.MAPPING_STORE === 'bigtable';
const PORTS = onBigtable
  ? ({ profile: 7000, snapshotCatalog: 7001, syncMapping: 7003 } as const)
  : ({ profile: 7000, snapshotCatalog: 7001, snapshotMapping: 7002 } as const);
const root = new URL('../..', import.meta.url).pathname;

const stack = await startLocalStack();
const bigtable = onBigtable ? await BigtableEmulator.start() : undefined;
const mappingEnv: Record<string, string> = {};
if (bigtable) {
  process.env.BIGTABLE_EMULATOR_HOST = bigtable.host;
  await createMappingTable('identity-mapping', 1);
  Object.assign(mappingEnv, {
    BIGTABLE_EMULATOR_HOST: bigtable.host,
    ...bigtableEnv('identity-mapping'),
  });
  console.log(`Bigtable emulator on ${bigtable.host}, table identity-mapping`);
}
const data = generateDemoDataset({
  seed: 7,
  persons: 2_000,
  segments: 300,
  orphanProfiles: 50,
  superNodeIds: 80,
});
console.log('Seeding MongoDB, BigQuery and Aerospike test servers...');
await stack.seed(data);

const children: ChildProcess[] = [];
for (const [target, port] of Object.entries(PORTS)) {
  const child = spawn(`${root}node_modules/.bin/functions-framework`, [], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      ...stack.env,
      ...mappingEnv,
      FUNCTION_TARGET: target,
      PORT: String(port),
    },
  });
  children.push(child);
}

async function waitFor(url: string, init?: RequestInit): Promise<Response> {
  for (let i = 0; ; i++) {
    try {
      return await fetch(url, init);
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const jobs = Object.entries(PORTS).filter(([target]) => target !== 'profile');
for (const [job, port] of jobs) {
  const res = await waitFor(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  console.log(`${job}: ${res.status} ${await res.text()}`);
}

const base = `http://127.0.0.1:${PORTS.profile}`;
console.log(
  [
    '',
    onBigtable
      ? 'The profile function runs on the production adapters (Bigtable mapping, GCS catalog, Aerospike). Try:'
      : 'The profile function runs on the production adapters (GCS snapshots, Aerospike). Try:',
    `  curl -i '${base}/?id=${data.samples.linked}'`,
    `  curl -i '${base}/?id=${data.samples.superNode}'`,
    `  curl -i '${base}/health'`,
    `Re-run a job: curl -X POST -H 'content-type: application/json' -d '{}' http://127.0.0.1:${jobs.at(-1)?.[1]}/`,
    'Ctrl-C to stop.',
  ].join('\n'),
);

const stop = async () => {
  for (const child of children) child.kill('SIGTERM');
  await stack.close();
  await bigtable?.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
