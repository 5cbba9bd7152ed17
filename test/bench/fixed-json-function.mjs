// The benchmark's ceiling: a functions-framework function that answers a fixed JSON body (the
// profile function's own answer, captured) with the same headers, doing nothing else.
import { readFileSync } from 'node:fs';
import { http } from '@google-cloud/functions-framework';

const body = readFileSync(process.env.FIXED_BODY_PATH ?? '');
const headers = JSON.parse(process.env.FIXED_HEADERS ?? '{}');

http('fixed', (_req, res) => {
  res.writeHead(200, { ...headers, 'content-length': body.length });
  res.end(body);
});
