import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A test server running in a child process, and how to stop it. */
export interface ChildServer<T> {
  readonly info: T;
  /** Sends one line to the server and resolves with its one-line answer. */
  ask(line: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts `tsx test/bench/emulator-process.ts ...args` and waits for its ready line. */
export async function startChildServer<T>(...args: string[]): Promise<ChildServer<T>> {
  const child: ChildProcess = spawn(
    'tsx',
    [new URL('./emulator-process.ts', import.meta.url).pathname, ...args],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const info = await new Promise<T>((resolve, reject) => {
    lines.once('line', (line) => resolve(JSON.parse(line) as T));
    child.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
  });
  return {
    info,
    ask: (line) =>
      new Promise<string>((resolve) => {
        lines.once('line', resolve);
        child.stdin?.write(`${line}\n`);
      }),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      await exited;
    },
  };
}
