// The production ceiling of the profile function: functions-framework doing the same Aerospike
// batch read of the same keys, and sending the same answer (the same body and headers, as the
// ceiling of part a does), with no mapping, catalog or rendering work. The plan
// (CEILING_PLAN_PATH) gives, per request path, the keys the profile function reads, its answer's
// headers and where its body lies in CEILING_BODIES_PATH. The read is the client's default one,
// every list and map bin decoded (the profile function reads them as bytes: raw-segments.ts).
import { readFileSync } from 'node:fs';
import { http } from '@google-cloud/functions-framework';
import Aerospike from 'aerospike';

const plan = JSON.parse(readFileSync(process.env.CEILING_PLAN_PATH ?? '', 'utf8'));
const bodies = readFileSync(process.env.CEILING_BODIES_PATH ?? '');
const namespace = process.env.AEROSPIKE_NAMESPACE ?? 'profiles';
const byPath = new Map(
  plan.map((p) => [
    p.path,
    {
      keys: p.keys,
      body: bodies.subarray(p.at, p.at + p.length),
      headers: p.headers,
    },
  ]),
);
const [host, port] = (process.env.AEROSPIKE_HOSTS ?? '127.0.0.1:3000').split(':');
// The profile function's client settings (their defaults): the same client, not only the same
// read. Its module log at WARN, its own log off, idle sockets checked past 55 s.
Aerospike.setDefaultLogging({ level: Aerospike.log.WARN });
const client = await Aerospike.connect({
  hosts: [{ addr: host, port: Number(port ?? 3000) }],
  connTimeoutMs: 1_000,
  log: { level: Aerospike.log.OFF },
  maxConnsPerNode: 100,
  maxSocketIdle: 55,
});
// The profile function's batch policy with its defaults (AEROSPIKE_TOTAL_TIMEOUT_MS 500, one
// retry of its own): one attempt with the first half of the total timeout; lists and maps
// decoded, the client's default (CEILING_LISTS_AS_BYTES=1: as bytes, as the profile reads them).
const policy = new Aerospike.BatchPolicy({
  totalTimeout: 250,
  socketTimeout: 250,
  maxRetries: 0,
  replica: Aerospike.policy.replica.SEQUENCE,
  deserialize: process.env.CEILING_LISTS_AS_BYTES !== '1',
});

http('ceiling', async (req, res) => {
  const entry = byPath.get(req.originalUrl);
  if (!entry) {
    res.writeHead(404).end();
    return;
  }
  const records = entry.keys.map(([set, key, keyType]) => ({
    key: new Aerospike.Key(namespace, set, keyType === 'integer' ? BigInt(key) : key),
    readAllBins: true,
  }));
  const results = await client.batchRead(records, policy);
  if (results.length !== records.length) throw new Error('short batch');
  res.writeHead(200, { ...entry.headers, 'content-length': entry.body.length });
  res.end(entry.body);
});
