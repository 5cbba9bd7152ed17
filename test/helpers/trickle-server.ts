// Runs as a worker thread loaded by plain Node: erasable TypeScript and node: imports only.
// Serves one body in small pieces at a steady pace from its own thread, so that the bytes keep
// arriving while the test's main thread is frozen (as Cloud Run freezes a throttled instance).
import { createServer } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

interface TrickleOptions {
  body: Uint8Array;
  pieceBytes: number;
  everyMs: number;
  /** Stop sending (but keep the connection open) after this many bytes. */
  stopAfter?: number;
}

const options = workerData as TrickleOptions;
const body = Buffer.from(options.body);
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
  let sent = 0;
  const timer = setInterval(() => {
    if (options.stopAfter !== undefined && sent >= options.stopAfter) return;
    const piece = body.subarray(sent, sent + options.pieceBytes);
    sent += piece.length;
    res.write(piece);
    if (sent >= body.length) {
      clearInterval(timer);
      res.end();
    }
  }, options.everyMs);
  res.on('close', () => clearInterval(timer));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  parentPort?.postMessage(typeof address === 'object' && address ? address.port : 0);
});
parentPort?.on('message', (message: unknown) => {
  if (message === 'close') {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
