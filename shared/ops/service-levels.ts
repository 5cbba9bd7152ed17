import { createHash } from 'node:crypto';
import { functionNames, type OpsSettings, ownLabels } from './ops-settings.js';

/** The header that pins GET /health to one region through the load balancer (deploy.sh's REGION_HEADER). */
export const REGION_HEADER = 'x-profile-api-region';

/** The custom service the SLOs belong to: this deployment's profile function, every region. */
export function serviceId(s: OpsSettings): string {
  return s.NAME_PREFIX;
}

export type SloId = 'availability' | 'latency';

/** The full resource name of an SLO, as select_slo_burn_rate names it. */
export function sloName(s: OpsSettings, slo: SloId): string {
  return `projects/${s.PROJECT_ID}/services/${serviceId(s)}/serviceLevelObjectives/${slo}`;
}

/**
 * The service (Service, REST field names). A custom service rather than the one Cloud Monitoring
 * detects per Cloud Run service: one SLO covers every region of REGIONS (detection makes a
 * service per region), and its id is ours, so a re-run finds it.
 */
export function monitoringService(s: OpsSettings): Record<string, unknown> {
  return {
    displayName: `${s.NAME_PREFIX}: profile API`,
    custom: {},
    userLabels: ownLabels(s, 'service'),
  };
}

/** The two SLOs, request-based on Cloud Run's own request metrics. */
export function serviceLevelObjectives(s: OpsSettings): Record<SloId, Record<string, unknown>> {
  const service = functionNames(s).profile;
  const requests = (type: string) =>
    `metric.type="run.googleapis.com/${type}" resource.type="cloud_run_revision" ` +
    `resource.label."service_name"="${service}"`;
  const period = `${s.SLO_PERIOD_DAYS * 86_400}s`;
  const percent = (goal: number) => `${Number((goal * 100).toFixed(3))}%`;
  return {
    availability: {
      displayName: `${percent(s.SLO_AVAILABILITY)} of requests answered without a 5xx, rolling ${s.SLO_PERIOD_DAYS} days`,
      goal: s.SLO_AVAILABILITY,
      rollingPeriod: period,
      serviceLevelIndicator: {
        requestBased: {
          goodTotalRatio: {
            badServiceFilter: `${requests('request_count')} metric.label."response_code_class"="5xx"`,
            totalServiceFilter: requests('request_count'),
          },
        },
      },
      userLabels: ownLabels(s, 'availability'),
    },
    latency: {
      displayName: `${percent(s.SLO_LATENCY_GOAL)} of requests answered within ${s.SLO_LATENCY_MS} ms, rolling ${s.SLO_PERIOD_DAYS} days`,
      goal: s.SLO_LATENCY_GOAL,
      rollingPeriod: period,
      serviceLevelIndicator: {
        requestBased: {
          distributionCut: {
            distributionFilter: requests('request_latencies'),
            range: { min: 0, max: s.SLO_LATENCY_MS },
          },
        },
      },
      userLabels: ownLabels(s, 'latency'),
    },
  };
}

/** Why there is no uptime check for `s`, or nothing when there is one. */
export function uptimeSkipped(s: OpsSettings): string | undefined {
  if (s.EDGE === 'lb' && s.EDGE_IAP && !s.API_KEYS_ON) {
    return 'EDGE_IAP=true: uptime checkers cannot pass Identity-Aware Proxy';
  }
  if (s.API_KEYS_ON && !s.UPTIME_API_KEY) {
    return 'the profile function requires an API key: set UPTIME_API_KEY_SECRET to a Secret Manager secret holding one of them';
  }
  if (s.EDGE !== 'lb' && !s.UPTIME_HOST) return 'the profile function has no URL yet';
  return undefined;
}

/** The hosts the uptime checks call. */
export function uptimeHosts(s: OpsSettings): string[] {
  if (uptimeSkipped(s)) return [];
  return [s.EDGE === 'lb' ? (s.DOMAIN as string) : (s.UPTIME_HOST as string)];
}

/**
 * The uptime checks (UptimeCheckConfig, REST field names) on GET /health: the function's own URL
 * with the OIDC token the platform checks (unless it is public), or with EDGE=lb one check per
 * region through the load balancer, pinned by REGION_HEADER. Only a 200 passes: /health answers
 * 503 while a snapshot is missing or the profile store is down.
 */
export function uptimeChecks(s: OpsSettings): Record<string, unknown>[] {
  const [host] = uptimeHosts(s);
  if (!host) return [];
  const targets: (string | undefined)[] = s.EDGE === 'lb' ? [...s.PROFILE_REGIONS] : [undefined];
  return targets.map((region) => {
    const headers: Record<string, string> = {};
    if (region) headers[REGION_HEADER] = region;
    if (s.UPTIME_API_KEY) headers['x-api-key'] = s.UPTIME_API_KEY;
    const oidc = s.EDGE !== 'lb' && !s.PROFILE_ALLOW_UNAUTHENTICATED;
    return {
      displayName: `${s.NAME_PREFIX}: /health${region ? ` via ${region}` : ''}`,
      monitoredResource: { type: 'uptime_url', labels: { project_id: s.PROJECT_ID, host } },
      httpCheck: {
        requestMethod: 'GET',
        path: '/health',
        port: 443,
        useSsl: true,
        validateSsl: true,
        ...(Object.keys(headers).length ? { headers, maskHeaders: Boolean(s.UPTIME_API_KEY) } : {}),
        acceptedResponseStatusCodes: [{ statusValue: 200 }],
        ...(oidc ? { serviceAgentAuthentication: { type: 'OIDC_TOKEN' } } : {}),
      },
      period: `${s.UPTIME_PERIOD_MINS * 60}s`,
      timeout: '10s',
      userLabels: {
        ...ownLabels(s, region ? `uptime-${region}` : 'uptime'),
        // The API answers the key masked: a digest of it shows a new key (the check is made anew).
        ...(s.UPTIME_API_KEY
          ? {
              'key-sha256': createHash('sha256')
                .update(s.UPTIME_API_KEY)
                .digest('hex')
                .slice(0, 16),
            }
          : {}),
      },
    };
  });
}
