import { z } from 'zod';
import { int } from '../config.js';

/** PEM text with at least one block of the given kind (`BEGIN ... CERTIFICATE`, `... PRIVATE KEY`). */
function pemText(kind: string) {
  return z
    .string()
    .refine(
      (v) =>
        new RegExp(`-----BEGIN [A-Z ]*${kind}-----[\\s\\S]+-----END [A-Z ]*${kind}-----`).test(v),
      `expected PEM text (-----BEGIN ...${kind}-----)`,
    );
}

type AerospikeSecurity = {
  readonly AEROSPIKE_USER?: string | undefined;
  readonly AEROSPIKE_PASSWORD?: string | undefined;
  readonly AEROSPIKE_AUTH_MODE: 'INTERNAL' | 'EXTERNAL' | 'PKI';
  readonly AEROSPIKE_TLS_NAME?: string | undefined;
  readonly AEROSPIKE_TLS_CA?: string | undefined;
  readonly AEROSPIKE_TLS_CERT?: string | undefined;
  readonly AEROSPIKE_TLS_KEY?: string | undefined;
  readonly AEROSPIKE_SOCKET_TIMEOUT_MS?: number | undefined;
  readonly AEROSPIKE_TOTAL_TIMEOUT_MS: number;
};

/**
 * Aerospike settings that only make sense together, refused here rather than at connect (the C
 * client's own checks, as_cluster_create in client 7.4.0: EXTERNAL and PKI need TLS, PKI takes no
 * password).
 */
export function checkAerospike(c: AerospikeSecurity, ctx: z.RefinementCtx) {
  const issue = (path: string, message: string) =>
    ctx.addIssue({ code: 'custom', path: [path], message });
  if (
    c.AEROSPIKE_SOCKET_TIMEOUT_MS !== undefined &&
    c.AEROSPIKE_SOCKET_TIMEOUT_MS > c.AEROSPIKE_TOTAL_TIMEOUT_MS
  ) {
    issue('AEROSPIKE_SOCKET_TIMEOUT_MS', 'must not exceed AEROSPIKE_TOTAL_TIMEOUT_MS');
  }
  const tls = c.AEROSPIKE_TLS_NAME !== undefined;
  for (const name of ['AEROSPIKE_TLS_CA', 'AEROSPIKE_TLS_CERT', 'AEROSPIKE_TLS_KEY'] as const) {
    if (c[name] !== undefined && !tls) issue(name, 'needs AEROSPIKE_TLS_NAME (TLS)');
  }
  if ((c.AEROSPIKE_TLS_CERT === undefined) !== (c.AEROSPIKE_TLS_KEY === undefined)) {
    issue('AEROSPIKE_TLS_CERT', 'AEROSPIKE_TLS_CERT and AEROSPIKE_TLS_KEY go together');
  }
  if (c.AEROSPIKE_AUTH_MODE !== 'INTERNAL' && !tls) {
    issue('AEROSPIKE_AUTH_MODE', `${c.AEROSPIKE_AUTH_MODE} needs TLS (AEROSPIKE_TLS_NAME)`);
  }
  if (c.AEROSPIKE_AUTH_MODE === 'PKI') {
    if (c.AEROSPIKE_TLS_CERT === undefined) {
      issue('AEROSPIKE_AUTH_MODE', 'PKI needs a client certificate (AEROSPIKE_TLS_CERT/_KEY)');
    }
    if (c.AEROSPIKE_PASSWORD !== undefined) {
      issue('AEROSPIKE_PASSWORD', 'PKI authenticates with the certificate: no password');
    }
  } else if ((c.AEROSPIKE_USER === undefined) !== (c.AEROSPIKE_PASSWORD === undefined)) {
    issue('AEROSPIKE_USER', 'AEROSPIKE_USER and AEROSPIKE_PASSWORD go together');
  }
}

/**
 * The profile store's settings (PROFILE_STORE, the embedded store's file, the Aerospike client's
 * settings): the profile function's schema holds them; create-profile-store reads them.
 */
export const profileStoreSchema = {
  PROFILE_STORE: z.enum(['embedded', 'aerospike']).default('embedded'),
  EMBEDDED_PROFILES_PATH: z.string().min(1).default('.data/demo/profiles.ndjson.gz'),
  SEGMENTS_BIN: z.string().min(1).max(15).default('segments'),
  AEROSPIKE_HOSTS: z
    .string()
    .regex(/^[^\s,:]+(:\d{1,5})?(,[^\s,:]+(:\d{1,5})?)*$/, 'expected host[:port][,host[:port]...]')
    .default('127.0.0.1:3000'),
  AEROSPIKE_NAMESPACE: z.string().min(1).max(31).default('profiles'),
  AEROSPIKE_USER: z.string().min(1).optional(),
  AEROSPIKE_PASSWORD: z.string().min(1).optional(),
  AEROSPIKE_CONNECT_TIMEOUT_MS: int(50, 60_000).default(1_000),
  /** Per attempt; unset: the total timeout shared by the attempts (see aerospikeStoreOptions). */
  AEROSPIKE_SOCKET_TIMEOUT_MS: int(10, 60_000).optional(),
  AEROSPIKE_TOTAL_TIMEOUT_MS: int(10, 60_000).default(500),
  AEROSPIKE_MAX_RETRIES: int(0, 10).default(1),
  /** Async connections per node (client default 100); deploy.sh sizes it from concurrency. */
  AEROSPIKE_MAX_CONNS_PER_NODE: int(1, 10_000).default(100),
  /** Pooled sockets idle longer are closed instead of used (0: never checked per command). */
  AEROSPIKE_MAX_SOCKET_IDLE_SECS: int(0, 86_400).default(55),
  /** The C client's own log (stderr, plain text), and the cluster events we log as JSON. */
  AEROSPIKE_LOG_LEVEL: z.enum(['OFF', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE']).default('WARN'),
  /** Enterprise: authentication mode with AEROSPIKE_USER (PKI: the TLS client certificate). */
  AEROSPIKE_AUTH_MODE: z.enum(['INTERNAL', 'EXTERNAL', 'PKI']).default('INTERNAL'),
  /** Enterprise: the name on the nodes' TLS certificates; set: every connection uses TLS. */
  AEROSPIKE_TLS_NAME: z.string().min(1).max(255).optional(),
  /** PEM text (from Secret Manager) of the CA that signed the nodes' certificates. */
  AEROSPIKE_TLS_CA: pemText('CERTIFICATE').optional(),
  /** PEM text of the client certificate and key (mutual TLS; required with PKI). */
  AEROSPIKE_TLS_CERT: pemText('CERTIFICATE').optional(),
  AEROSPIKE_TLS_KEY: pemText('PRIVATE KEY').optional(),
};

/** The settings the profile store reads. */
export type ProfileStoreSettings = Readonly<
  z.output<z.ZodObject<typeof profileStoreSchema>> & {
    LOG_LEVEL: 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
  }
>;
