// Runs one test server in its own process for benchmarks, so that its CPU and memory are not
// counted against the code being measured. Prints one JSON line {"baseUrl"|"host","port"} when
// ready; exits when stdin closes. The Aerospike server also answers `stats` lines on stdin.
//   tsx test/bench/emulator-process.ts gcs
//   tsx test/bench/emulator-process.ts bigquery <persons>
//   tsx test/bench/emulator-process.ts aerospike
//   tsx test/bench/emulator-process.ts bigquery-sync <persons> [partition]   (syncMapping's queries)
// The mapping is one partition: `partition`, or today's (UTC) date.
import { createInterface } from 'node:readline';
import { AerospikeEmulator } from '../emulators/aerospike-emulator.js';
import { BigQueryEmulator } from '../emulators/bigquery-emulator.js';
import { GcsEmulator } from '../emulators/gcs-emulator.js';
import { mappingResult } from '../helpers/mapping-result.js';
import { benchPerson } from './bench-data.js';

const [kind, arg, partitionArg] = process.argv.slice(2);
const partition = partitionArg ?? new Date().toISOString().slice(0, 10);
let close: () => Promise<void>;

if (kind === 'gcs') {
  const gcs = await GcsEmulator.start();
  gcs.createBucket('bench');
  close = () => gcs.close();
  console.log(JSON.stringify({ baseUrl: gcs.baseUrl }));
} else if (kind === 'bigquery') {
  const persons = Number(arg ?? '1000');
  const bq = await BigQueryEmulator.start({ projectId: 'bench-project' });
  bq.respondWith(() => mappingResult(persons, benchPerson, partition, 25_000));
  close = () => bq.close();
  console.log(JSON.stringify({ baseUrl: bq.baseUrl, projectId: bq.projectId }));
} else if (kind === 'bigquery-sync') {
  // What syncMapping asks: the partition list, then the version query (a person per row, ordered
  // by person key); its shard workers then read the result by position.
  const persons = Number(arg ?? '1000');
  const bq = await BigQueryEmulator.start({ projectId: 'bench-project' });
  bq.respondWith((q) =>
    q.query.includes('SELECT DISTINCT')
      ? {
          schema: [{ name: 'day', type: 'STRING' }],
          totalRows: 1,
          row: () => [partition],
        }
      : {
          schema: [
            { name: 'person', type: 'STRING', mode: 'NULLABLE' },
            {
              name: 'ids',
              type: 'RECORD',
              mode: 'REPEATED',
              fields: [
                { name: 'id', type: 'STRING' },
                { name: 'type', type: 'STRING' },
              ],
            },
            { name: 'reason', type: 'STRING', mode: 'NULLABLE' },
            { name: 'row_count', type: 'INT64', mode: 'NULLABLE' },
          ],
          totalRows: persons,
          pageSize: 10_000,
          row: (i) => {
            const ids = benchPerson(i).map(([id, type]) => [id, type]);
            return [`person-${String(i).padStart(9, '0')}`, ids, null, ids.length];
          },
        },
  );
  close = () => bq.close();
  console.log(JSON.stringify({ baseUrl: bq.baseUrl, projectId: bq.projectId }));
} else if (kind === 'aerospike') {
  const as = await AerospikeEmulator.start();
  close = () => as.close();
  console.log(JSON.stringify({ host: as.host, port: as.port }));
  // `stats` on stdin answers the server's request counters as one JSON line.
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'stats')
      void as.stats().then((stats) => console.log(JSON.stringify(stats)));
  });
} else {
  console.error(
    'usage: emulator-process.ts gcs | bigquery <persons> | bigquery-sync <persons> [partition] | aerospike',
  );
  process.exit(2);
}

process.stdin.resume();
process.stdin.on('end', () => {
  void close().then(() => process.exit(0));
});
