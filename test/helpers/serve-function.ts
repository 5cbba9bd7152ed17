import type { AddressInfo } from 'node:net';
import { getTestServer } from '@google-cloud/functions-framework/testing';

/** A registered function served by functions-framework's own server on a free local port. */
export interface ServedFunction {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `target` (already registered by importing the entry module) on 127.0.0.1. */
export async function serveFunction(target: string): Promise<ServedFunction> {
  const server = getTestServer(target);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
