// `npm run start:test-servers`: the production path on your machine, without any cloud. Starts
// the GCS, BigQuery, MongoDB and Aerospike test servers, seeds them with generated data dated
// today, serves the functions with the production adapters (functions-framework, built code),
// runs the jobs once, and prints curls. Ctrl-C stops everything.
//   MAPPING_STORE=bigtable npm run start:test-servers
// does the same with the mapping in Google's Bigtable emulator, written by syncMapping (:7003):
// same generated data, so the two runs can be compared id by id.
import { startTestServers } from './test-servers.js';

const onBigtable = process.env.MAPPING_STORE === 'bigtable';
if (onBigtable) console.log('Starting the test servers and Google Bigtable emulator...');
else console.log('Starting the test servers...');
const servers = await startTestServers({
  mappingStore: onBigtable ? 'bigtable' : 'snapshot',
  ports: { profile: 7000, snapshotCatalog: 7001, mapping: onBigtable ? 7003 : 7002 },
});
for (const { target, status, body } of servers.jobs) console.log(`${target}: ${status} ${body}`);

const base = servers.profileUrl;
const { samples } = servers.data;
console.log(
  [
    '',
    onBigtable
      ? 'The profile function runs on the production adapters (Bigtable mapping, GCS catalog, Aerospike). Try:'
      : 'The profile function runs on the production adapters (GCS snapshots, Aerospike). Try:',
    `  curl -i '${base}/?id=${samples.linked}'`,
    `  curl -i '${base}/?id=${samples.superNode}'`,
    `  curl -i '${base}/health'`,
    `Re-run a job: curl -X POST -H 'content-type: application/json' -d '{}' ${servers.mappingJob.url}`,
    'Ctrl-C to stop.',
  ].join('\n'),
);

const stop = async () => {
  await servers.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
