import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import type { ProfileDeps } from '../../functions/profile/profile-deps.js';
import { RequestLog } from '../../functions/profile/request-log.js';
import { createLogger, type Logger } from '../../shared/logger.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { FakeProfileStore } from '../helpers/fake-profile-store.js';
import { cacheOf, catalogSnapshot, mappingSnapshot, registry } from '../helpers/fixed-snapshots.js';
import { httpEvent } from '../helpers/http-event.js';
import { withBackendChecks } from '../helpers/profile-deps.js';

// What a caller can make the function write to its log (Cloud Logging bills by the byte).
describe('the request log, whatever callers send', () => {
  it('bounds every field a caller writes: a 7.5 KB path and User-Agent make a short line', async () => {
    const sizes: number[] = [];
    const log = createLogger({ sink: (line) => sizes.push(line.length) });
    const requestLog = new RequestLog(loadProfileConfig({}), log);
    const path = `/${'p'.repeat(7_500)}`;
    const event = httpEvent(`${path}?id=${'q'.repeat(7_500)}`, 'GET', {
      'user-agent': 'u'.repeat(7_500),
    });
    const withAgent = {
      ...event,
      requestContext: {
        ...event.requestContext,
        http: { ...event.requestContext.http, userAgent: 'u'.repeat(7_500) },
      },
    };
    requestLog.answered({
      event: withAgent,
      route: 'other',
      status: 404,
      errorCode: 'not_found',
      phases: { total: 0.1 },
    });
    expect(sizes).toHaveLength(1);
    expect(sizes[0]).toBeLessThan(1_500);
  });

  it('names the route in its message, never the raw path', async () => {
    const { log, lines } = captureLogger();
    const handler = createProfileHandler({
      ...(await import('../helpers/profile-deps.js')).withBackendChecks(await minimalDeps(log)),
    });
    await handler(httpEvent(`/${'x'.repeat(5_000)}`), {});
    const line = lines.find((l) => typeof l.httpRequest === 'object');
    expect(line?.message).toBe('GET other 404');
  });

  it('logs at most 10 rejected requests a second (burst 20), counting the rest exactly', () => {
    const { log, lines } = captureLogger();
    let now = 0;
    const requestLog = new RequestLog(loadProfileConfig({}), log, Math.random, () => now);
    const reject = () =>
      requestLog.answered({
        event: httpEvent('/nope'),
        route: 'other',
        status: 404,
        errorCode: 'not_found',
        phases: { total: 0.1 },
      });
    // 1,000 rejected requests within one second: the burst, then what a second refills.
    for (let i = 0; i < 1_000; i++) {
      now = i; // milliseconds
      reject();
    }
    expect(lines.length).toBeLessThanOrEqual(20 + 10);
    // A minute later, the next one is logged, with how many were left out since the last line.
    now = 60_000;
    reject();
    const counted = lines.reduce((sum, l) => sum + 1 + ((l.rejectedNotLogged as number) ?? 0), 0);
    expect(counted).toBe(1_001);
    expect(lines.at(-1)?.rejectedNotLogged).toBeGreaterThan(0);
  });

  it("carries the answer's error code, which the log-based metrics count by", () => {
    const { log, lines } = captureLogger();
    const requestLog = new RequestLog(loadProfileConfig({}), log, Math.random, () => 0);
    const answer = (status: number, errorCode: string | undefined) =>
      requestLog.answered({ event: httpEvent('/'), route: '/', status, errorCode, phases: {} });
    answer(503, 'mapping_unavailable');
    answer(500, 'internal');
    expect(lines.map((l) => [l.severity, l.errorCode])).toEqual([
      ['ERROR', 'mapping_unavailable'],
      ['ERROR', 'internal'],
    ]);
    const ok = captureLogger();
    new RequestLog(loadProfileConfig({ LOG_REQUESTS: 'all' }), ok.log).answered({
      event: httpEvent('/'),
      route: '/',
      status: 200,
      errorCode: undefined,
      phases: {},
    });
    expect(ok.lines[0]).not.toHaveProperty('errorCode');
  });

  it('never holds back 5xx or slow requests', () => {
    const { log, lines } = captureLogger();
    const requestLog = new RequestLog(loadProfileConfig({}), log, Math.random, () => 0);
    for (let i = 0; i < 100; i++) {
      requestLog.answered({
        event: httpEvent('/'),
        route: '/',
        status: 503,
        errorCode: 'store_unavailable',
        phases: { total: 1 },
      });
    }
    expect(lines).toHaveLength(100);
  });
});

function minimalDeps(log: Logger): ProfileDeps {
  return withBackendChecks({
    config: loadProfileConfig({}),
    registry,
    catalog: cacheOf(async () => catalogSnapshot([])),
    mapping: new SnapshotMappingStore(
      cacheOf(async () => mappingSnapshot([])),
      { maxStalenessSecs: 172_800 },
    ),
    mappingBudgetBytes: 0,
    store: new FakeProfileStore(),
    log,
    now: Date.now,
  });
}
