import type { Request, Response } from '@google-cloud/functions-framework';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../shared/byte-writer.js';
import { toHttpFunction } from '../../shared/http/functions-framework-adapter.js';
import type { HttpHandler } from '../../shared/http/http-event.js';
import { jsonResult } from '../../shared/http/responses.js';
import { silentLogger } from '../../shared/logger.js';

/** A response whose body is "on the wire" until `finish()`: as on a slow client connection. */
function slowResponse() {
  const sent: { body?: Buffer; finish: () => void } = { finish: () => {} };
  const res = {
    headersSent: false,
    writeHead() {
      this.headersSent = true;
      return this;
    },
    end(body: Buffer, onFinish?: () => void) {
      sent.body = body;
      sent.finish = () => onFinish?.();
      return this;
    },
  };
  return { res: res as unknown as Response, sent };
}

const request = (id: string) =>
  ({ url: `/?id=${id}`, originalUrl: `/?id=${id}`, method: 'GET', headers: {} }) as Request;

/** Answers `{"id":"<id>","pad":"<id repeated>"}`, built in a pooled buffer. */
const handler: HttpHandler = async (event) => {
  const id = new URLSearchParams(event.rawQueryString).get('id') ?? '';
  const out = new ByteWriter().text(`{"id":"${id}","pad":"${id.repeat(20_000)}"}`);
  return jsonResult(200, out.take());
};

describe('answers built in pooled buffers', () => {
  it('keeps an answer intact until it has been sent, then reuses its buffer', async () => {
    const fn = toHttpFunction(() => handler, silentLogger);
    const a = slowResponse();
    await fn(request('a'), a.res);
    const expectedA = `{"id":"a","pad":"${'a'.repeat(20_000)}"}`;

    // Another answer while the first is still on its way: it must not land in the same bytes.
    const b = slowResponse();
    await fn(request('b'), b.res);
    expect(a.sent.body?.toString()).toBe(expectedA);
    expect(b.sent.body?.buffer).not.toBe(a.sent.body?.buffer);

    // Once sent, the buffer goes back to the pool: the next answer is built in it.
    a.sent.finish();
    const c = slowResponse();
    await fn(request('c'), c.res);
    expect(c.sent.body?.buffer).toBe(a.sent.body?.buffer);
    expect(c.sent.body?.toString()).toBe(`{"id":"c","pad":"${'c'.repeat(20_000)}"}`);
    b.sent.finish();
    c.sent.finish();
  });
});
