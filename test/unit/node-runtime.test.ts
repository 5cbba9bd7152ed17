import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

describe('runtime', () => {
  it('runs on Node 24, the Cloud Run functions runtime we deploy to (nodejs24)', async () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
    const pkg = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toBe('24.x');
    expect(pkg.devDependencies.node).toMatch(/^24\./);
  });
});
