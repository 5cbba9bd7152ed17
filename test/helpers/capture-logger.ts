import { createLogger, type Logger } from '../../shared/logger.js';

/** A logger that keeps its JSON lines for assertions. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    minSeverity: 'DEBUG',
    sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
  });
  return { log, lines };
}
