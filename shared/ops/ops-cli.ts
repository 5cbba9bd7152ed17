import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { ALERTS } from './alert-policies.js';
import { type ExistingOps, type OpsAction, planOps, wantedOps } from './ops-plan.js';
import { loadOpsSettings, type OpsSettings } from './ops-settings.js';
import { uptimeSkipped } from './service-levels.js';

// deploy.sh's side of its monitoring (run with tsx, settings in the environment):
//   check                  validate the settings; say what will be made (alerts on or off)
//   plan EXISTING OUT      write each definition to OUT and print one step per line:
//                          KIND OP ID TARGET FILE MASK ('-' when empty)
//   report EXISTING        what exists and what is missing or differs (deploy.sh verify)
//   teardown EXISTING OUT  the steps deleting everything of this deployment's monitoring
// EXISTING holds what deploy.sh listed: metrics.json, policies.json, dashboards.json,
// uptime.json, service.json, slos.json, channels.json (empty files: nothing).

function readJson(dir: string, file: string): unknown {
  const path = join(dir, file);
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, 'utf8').trim();
  return text === '' ? undefined : JSON.parse(text);
}

/** What deploy.sh listed, as plain arrays and objects. */
export function readExisting(dir: string): ExistingOps {
  const array = (file: string, key?: string): Record<string, unknown>[] => {
    const value = readJson(dir, file);
    const items = key ? (value as Record<string, unknown> | undefined)?.[key] : value;
    return Array.isArray(items) ? (items as Record<string, unknown>[]) : [];
  };
  const service = readJson(dir, 'service.json') as Record<string, unknown> | undefined;
  return {
    metrics: array('metrics.json'),
    policies: array('policies.json'),
    dashboards: array('dashboards.json'),
    uptimeChecks: array('uptime.json', 'uptimeCheckConfigs'),
    service: service?.name ? service : undefined,
    slos: array('slos.json', 'serviceLevelObjectives'),
    channels: array('channels.json'),
  };
}

/** Writes each action's body to `out` and returns deploy.sh's lines. */
export function planLines(actions: readonly OpsAction[], out: string): string[] {
  mkdirSync(out, { recursive: true });
  return actions.map((a) => {
    let file = '-';
    if (a.body) {
      file = join(out, `${a.kind}-${a.id}.json`);
      writeFileSync(file, `${JSON.stringify(a.body, null, 2)}\n`, { mode: 0o600 });
    }
    return [a.kind, a.op, a.id, a.target ?? '-', file, a.mask ?? '-'].join(' ');
  });
}

/** The summary deploy.sh prints before it changes anything. */
export function describeOps(s: OpsSettings): string[] {
  const want = wantedOps(s);
  const lines = [
    `# monitoring: ${want.metrics.length} log-based metrics, a dashboard, 2 SLOs (availability ${s.SLO_AVAILABILITY}, ${s.SLO_LATENCY_GOAL} within ${s.SLO_LATENCY_MS} ms over ${s.SLO_PERIOD_DAYS} days), ${want.uptimeChecks.length} uptime check(s) on /health`,
  ];
  const skipped = uptimeSkipped(s);
  if (skipped) lines.push(`deploy.sh: note: no uptime check: ${skipped}`);
  if (want.policies.length === 0) {
    lines.push(
      'deploy.sh: note: alerts are off: no notification channel. Set ALERT_EMAIL=you@example.com (comma-separated addresses) or ALERT_CHANNELS=projects/PROJECT/notificationChannels/ID (channels you have: gcloud beta monitoring channels list) and deploy again',
    );
  } else {
    lines.push(
      `# alerts: ${want.policies.map((p) => p.displayName.slice(s.NAME_PREFIX.length + 2)).join(', ')}; to ${s.ALERT_CHANNEL_NAMES.join(', ')}`,
    );
  }
  return lines;
}

/** Verify's report: one line per definition, and whether anything is missing or differs. */
export function reportOps(s: OpsSettings, existing: ExistingOps): { lines: string[]; ok: boolean } {
  const actions = planOps(s, existing);
  const word = { create: 'missing', update: 'differs', keep: 'present', delete: 'extra' } as const;
  const lines = actions.map((a) => {
    const what =
      a.kind === 'policy'
        ? `alert "${ALERTS[a.id as keyof typeof ALERTS] ?? a.id}"`
        : `${a.kind} ${a.id}`;
    return `# ${word[a.op]}: ${what}`;
  });
  if (s.ALERT_CHANNEL_NAMES.length === 0) {
    lines.push('# alerts are off: no notification channel (ALERT_EMAIL or ALERT_CHANNELS)');
  }
  return { lines, ok: actions.every((a) => a.op === 'keep') };
}

function main(argv: readonly string[]): number {
  const [command, existingDir, out] = argv;
  let settings: OpsSettings;
  try {
    settings = loadOpsSettings(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `deploy.sh: monitoring settings: ${err.message.replace(/^invalid configuration: /, '')}\n`,
      );
      return 1;
    }
    throw err;
  }
  switch (command) {
    case 'check':
      for (const line of describeOps(settings)) {
        (line.startsWith('#') ? process.stdout : process.stderr).write(`${line}\n`);
      }
      return 0;
    case 'plan':
    case 'teardown': {
      if (!existingDir || !out) break;
      const actions = planOps(settings, readExisting(existingDir), command === 'teardown');
      process.stdout.write(`${planLines(actions, out).join('\n')}\n`);
      return 0;
    }
    case 'report': {
      if (!existingDir) break;
      const { lines, ok } = reportOps(settings, readExisting(existingDir));
      process.stdout.write(`${lines.join('\n')}\n`);
      return ok ? 0 : 3;
    }
  }
  process.stderr.write(
    'usage: ops-cli.ts check | plan EXISTING OUT | report EXISTING | teardown EXISTING OUT\n',
  );
  return 2;
}

if (process.argv[1]?.endsWith('ops-cli.ts') || process.argv[1]?.endsWith('ops-cli.js')) {
  process.exitCode = main(process.argv.slice(2));
}
