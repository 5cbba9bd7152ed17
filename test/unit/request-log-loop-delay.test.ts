import { describe, expect, it } from 'vitest';
import { loadProfileConfig } from '../../functions/profile/config.js';
import { createProfileHandler } from '../../functions/profile/handler.js';
import { SnapshotMappingStore } from '../../shared/mapping/snapshot-mapping-store.js';
import { captureLogger } from '../helpers/capture-logger.js';
import { FakeProfileStore } from '../helpers/fake-profile-store.js';
import { cacheOf, catalogSnapshot, mappingSnapshot, registry } from '../helpers/fixed-snapshots.js';
import { httpEvent } from '../helpers/http-event.js';
import { withBackendChecks } from '../helpers/profile-deps.js';

const A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';

describe('the request log', () => {
  it('carries the event-loop delay, to size concurrency from', async () => {
    const { log, lines } = captureLogger();
    const handler = createProfileHandler(
      withBackendChecks({
        config: loadProfileConfig({ LOG_REQUESTS: 'errors', LOG_SLOW_MS: '1' }),
        registry,
        catalog: cacheOf(async () => catalogSnapshot([])),
        mapping: new SnapshotMappingStore(
          cacheOf(async () => mappingSnapshot([[[A, '222222']]])),
          { maxStalenessSecs: 172_800 },
        ),
        mappingBudgetBytes: 0,
        store: Object.assign(new FakeProfileStore().put('222222', A, { segments: [] }), {
          delayMs: 5,
        }),
        log,
        now: Date.now,
      }),
    );
    await handler(httpEvent(`/?id=${A}`), {});
    const slow = lines.filter((l) => typeof l.httpRequest === 'object');
    expect(slow).toHaveLength(1);
    expect(slow[0]).toMatchObject({
      httpRequest: { status: 200 },
      eventLoopDelay: {
        p50Ms: expect.any(Number),
        p99Ms: expect.any(Number),
        maxMs: expect.any(Number),
        samples: expect.any(Number),
      },
    });
  });
});
