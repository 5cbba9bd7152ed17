// The production ceiling of the profile function: functions-framework doing the same Aerospike
// batch read of the same keys with the same policy, and sending the same answer bytes, with no
// mapping, catalog or rendering work. The plan (CEILING_PLAN_PATH) gives, per request path, the
// keys the profile function reads and where its answer lies in CEILING_BODIES_PATH.
import { readFileSync } from 'node:fs';
import { http } from '@google-cloud/functions-framework';
import Aerospike from 'aerospike';

const plan = JSON.parse(readFileSync(process.env.CEILING_PLAN_PATH ?? '', 'utf8'));
const bodies = readFileSync(process.env.CEILING_BODIES_PATH ?? '');
const namespace = process.env.AEROSPIKE_NAMESPACE ?? 'profiles';
const byPath = new Map(
  plan.map((p) => [p.path, { keys: p.keys, body: bodies.subarray(p.at, p.at + p.length) }]),
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
// retry of its own): one attempt with the first half of the total timeout.
const policy = new Aerospike.BatchPolicy({
  totalTimeout: 250,
  socketTimeout: 250,
  maxRetries: 0,
  replica: Aerospike.policy.replica.SEQUENCE,
});
const headers = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

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
  res.writeHead(200, { ...headers, 'content-length': entry.body.length });
  res.end(entry.body);
});
