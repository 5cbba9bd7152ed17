// (m) Requests crafted to cost the profile function more than they should, each beside a normal
// GET in the same run: the server's CPU per request, the answer's size, the log it writes, and
// what connections that never read their answers hold.
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import autocannon from 'autocannon';
import { type FunctionProcess, startFunction } from './function-process.js';
import type { DemoPaths } from './http-bench.js';

const KEY = 'bench-key-0123456789';

/** One kind of request, as the load generator sends it. */
interface Shot {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** What one kind of request cost the server, over a load run. */
export interface ShotFigures {
  readonly cpuUsPerRequest: number;
  readonly requests: number;
  readonly bytesPerAnswer: number;
  readonly logBytesPerRequest: number;
  readonly statuses: string;
}

/** The attacks of issue 25 and the normal requests they are held against. */
export interface AttackFigures {
  readonly get: ShotFigures;
  readonly batch: ShotFigures;
  readonly attacks: readonly {
    readonly name: string;
    readonly figures: ShotFigures;
    /** What it is held against: a GET, or a normal batch of the same size (per id). */
    readonly against: 'get' | 'batch';
  }[];
  /** Server RSS growth per connection that asked for the largest batch and never read it. */
  readonly slowReaderBytesPerConnection: number;
  readonly longestLogLine: number;
}

/** Runs the attacks against one profile function on the demo data (API keys required). */
export async function benchAttacks(
  demo: DemoPaths,
  work: string,
  ids: { readonly mix: readonly string[]; readonly superNode: readonly string[] },
  seconds: number,
): Promise<AttackFigures> {
  const logPath = join(work, 'attack-log.ndjson');
  const logFd = openSync(logPath, 'w');
  const f = await startFunction(
    'profile',
    {
      SNAPSHOT_URI: `file:${demo.snapshotDir}`,
      EMBEDDED_PROFILES_PATH: demo.profilesPath,
      API_KEYS: KEY,
      NODE_ENV: 'production',
    },
    undefined,
    logFd,
  );
  try {
    const key = { 'x-api-key': KEY };
    const json = { ...key, 'content-type': 'application/json' };
    const batchOf = (list: readonly string[]) =>
      JSON.stringify({ ids: list.slice(0, 100).map((id) => ({ id })) });
    const super0 = ids.superNode[0] as string;
    const get: Shot = { method: 'GET', path: `/?id=${ids.mix[0]}`, headers: key };
    const normalBatch: Shot = {
      method: 'POST',
      path: '/profiles:batchGet',
      headers: json,
      body: batchOf(ids.mix),
    };
    const nested = Array.from({ length: 60 }, (_, i) => `a[b${i}][c][d][e][f]=${i}`).join('&');
    const attacks: { name: string; shot: Shot; against: 'get' | 'batch' }[] = [
      {
        name: 'path of 16,300 slashes then a letter',
        shot: { method: 'GET', path: `/${'/'.repeat(16_300)}a`, headers: key },
        against: 'get',
      },
      {
        name: 'path of 8,000 slashes then a letter (just within the URL limit)',
        shot: { method: 'GET', path: `/${'/'.repeat(8_000)}a`, headers: key },
        against: 'get',
      },
      {
        name: 'batch: 100 copies of a super-node id',
        shot: { ...normalBatch, body: batchOf(Array(100).fill(super0)) },
        against: 'batch',
      },
      {
        name: 'batch: 100 members of one super-node person',
        shot: { ...normalBatch, body: batchOf(ids.superNode) },
        against: 'batch',
      },
      {
        name: 'GET /health, no key, gzipped nested form body',
        shot: {
          method: 'GET',
          path: '/health',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'content-encoding': 'gzip',
          },
          body: gzipSync(nested),
        },
        against: 'get',
      },
      {
        name: 'no key, 7.5 KB path and User-Agent (log volume)',
        shot: {
          method: 'GET',
          path: `/${'p'.repeat(7_500)}`,
          headers: { 'user-agent': 'u'.repeat(7_500) },
        },
        against: 'get',
      },
      {
        name: 'GET /health with the key (backend checks)',
        shot: { method: 'GET', path: '/health', headers: key },
        against: 'get',
      },
    ];
    // Warm-up, then the normal requests before and after the attacks (their mean is the baseline).
    await shoot(f, logPath, get, 2);
    await shoot(f, logPath, normalBatch, 2);
    const gets = [await shoot(f, logPath, get, seconds)];
    const batches = [await shoot(f, logPath, normalBatch, seconds)];
    const results = [];
    for (const a of attacks) {
      results.push({
        name: a.name,
        against: a.against,
        figures: await shoot(f, logPath, a.shot, seconds),
      });
    }
    gets.push(await shoot(f, logPath, get, seconds));
    batches.push(await shoot(f, logPath, normalBatch, seconds));
    const slowReaderBytesPerConnection = await slowReaders(f, {
      ...normalBatch,
      body: batchOf(Array(100).fill(super0)),
    });
    const longestLogLine = Math.max(
      0,
      ...readFileSync(logPath, 'utf8')
        .split('\n')
        .map((line) => line.length),
    );
    return {
      get: mean(gets),
      batch: mean(batches),
      attacks: results,
      slowReaderBytesPerConnection,
      longestLogLine,
    };
  } finally {
    await f.stop();
    closeSync(logFd);
  }
}

async function shoot(
  f: FunctionProcess,
  logPath: string,
  shot: Shot,
  seconds: number,
): Promise<ShotFigures> {
  const cpuBefore = f.cpuMs();
  const logBefore = statSync(logPath).size;
  // autocannon frames the body itself (content-length).
  const headers: Record<string, string> = { ...shot.headers };
  const result = await autocannon({
    url: f.url,
    connections: 8,
    duration: seconds,
    requests: [
      {
        method: shot.method,
        path: shot.path,
        headers,
        ...(shot.body === undefined ? {} : { body: shot.body }),
      },
    ],
  });
  const requests = result.requests.total;
  const statuses = Object.entries(result.statusCodeStats ?? {})
    .map(([code, s]) => `${code} x${(s as { count: number }).count}`)
    .join(', ');
  return {
    cpuUsPerRequest: ((f.cpuMs() - cpuBefore) * 1000) / Math.max(1, requests),
    requests,
    bytesPerAnswer: requests > 0 ? result.throughput.total / requests : 0,
    logBytesPerRequest: (statSync(logPath).size - logBefore) / Math.max(1, requests),
    statuses,
  };
}

/** Opens 50 connections that each ask `shot` and never read; the server's RSS growth per one. */
async function slowReaders(f: FunctionProcess, shot: Shot): Promise<number> {
  const CONNECTIONS = 50;
  const url = new URL(f.url);
  const before = f.rssBytes();
  const body = Buffer.from(shot.body ?? '');
  const head =
    `${shot.method} ${shot.path} HTTP/1.1\r\nhost: x\r\n` +
    Object.entries(shot.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `content-length: ${body.length}\r\n\r\n`;
  const sockets: Socket[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const socket = connect(Number(url.port), url.hostname);
    socket.pause(); // never read: the answer stays with the server and the kernel
    socket.on('error', () => undefined);
    socket.write(head);
    socket.write(body);
    sockets.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const grown = Math.max(0, f.rssBytes() - before);
  for (const socket of sockets) socket.destroy();
  return grown / CONNECTIONS;
}

function mean(runs: readonly ShotFigures[]): ShotFigures {
  const avg = (pick: (r: ShotFigures) => number) =>
    runs.reduce((sum, r) => sum + pick(r), 0) / runs.length;
  return {
    cpuUsPerRequest: avg((r) => r.cpuUsPerRequest),
    requests: avg((r) => r.requests),
    bytesPerAnswer: avg((r) => r.bytesPerAnswer),
    logBytesPerRequest: avg((r) => r.logBytesPerRequest),
    statuses: runs.map((r) => r.statuses).join(' / '),
  };
}
