#!/usr/bin/env bash
# Deploys the Profile API to a Google Cloud project: APIs, the snapshot bucket with its
# retention rule, least-privilege service accounts, the three Cloud Run functions (gen2,
# nodejs24) and the two Cloud Scheduler jobs. Idempotent: creates what is missing and updates
# what exists, so a re-run is the update path. MAPPING_STORE=bigtable keeps the identity mapping
# in Bigtable (instance, table, sync job); EDGE=lb puts a load balancer with Cloud Armor in front.
#
#   PROJECT_ID=my-project AEROSPIKE_HOSTS=10.0.0.5:3000 VPC_CONNECTOR=aerospike-connector \
#   MONGO_DATABASE=adtech MAPPING_TABLE=my-project.identity.user_mapping ./deploy.sh
#
#   ./deploy.sh --help        every setting with its default
#   DRY_RUN=1 ./deploy.sh     print every command instead of running it
#   ./deploy.sh verify        dry-run the mapping query against the real table (free)
#   ./deploy.sh rollback mapping 20261130T043000Z-1a2b3c4d
#                             pause that job and republish an earlier snapshot version
#   ./deploy.sh teardown      delete the functions and scheduler jobs (TEARDOWN_ALL=1: also
#                             the bucket, secrets' bindings stay; service accounts go too)
set -euo pipefail
# The checkout this script is in: its own tools and code, wherever it is run from.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# MEASURED FIGURES for sizing the profile function (see --help), from `npm run bench` part f
# (README "Memory"); shared/memory-budget.ts holds the same numbers and a test keeps them equal.
# Each stays a single assignment: the tests read them from this file.
# Memory of a profile instance besides the mapping (runtime, catalog, buffers), in MiB.
PROFILE_BASE_MIB=384
# Peak memory per mapping id while a refresh holds the old and the new index, in bytes
# (81.6 measured at 1M ids, 65.3 at 5M).
REFRESH_BYTES_PER_ID=85
# Size of the loaded mapping index per id (what MAPPING_MAX_BYTES counts), in bytes (27.8).
INDEX_BYTES_PER_ID=28

MIB=1048576
# Cloud Run's memory sizes, smallest first.
MEMORY_SIZES=(512Mi 1Gi 2Gi 4Gi 8Gi 16Gi 32Gi)
VERSION_PATTERN='^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$'
# With EDGE=lb, GET /health carrying this header goes to that region's function only, so that
# verify can check every region through the load balancer (anything else goes to the nearest).
REGION_HEADER=x-profile-api-region
# Cloud Armor takes at most this many ranges in one rule's --src-ip-ranges.
MAX_ALLOWED_CIDRS=10
# RATE_LIMIT_KEY=api-key: one rule per known key prefix, from this priority on (before 1000).
# (A rule's description holds at most 64 characters: the longest prefix, 32, still fits.)
KEY_RULE_FIRST=900
MAX_KEY_PREFIXES=20
# What a function build needs (Google's "Custom service account for Cloud Build"): write its
# logs, push the image, read the uploaded source.
BUILD_ROLES=(roles/logging.logWriter roles/artifactregistry.writer roles/storage.objectViewer)

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

# MiB a profile instance needs for $1 mapping ids.
needed_mib() {
  echo $((PROFILE_BASE_MIB + ($1 * REFRESH_BYTES_PER_ID + MIB - 1) / MIB))
}

# Bytes in a memory size as gcloud takes it: <integer><k|M|G|Ki|Mi|Gi>, optionally ending in b/B.
memory_bytes() {
  [[ $1 =~ ^([0-9]+)(k|M|G|Ki|Mi|Gi)[bB]?$ ]] ||
    die "memory size '$1' is not <integer><k|M|G|Ki|Mi|Gi>, e.g. 2Gi"
  local number=$((10#${BASH_REMATCH[1]}))
  case ${BASH_REMATCH[2]} in
    k) echo $((number * 1000)) ;;
    M) echo $((number * 1000000)) ;;
    G) echo $((number * 1000000000)) ;;
    Ki) echo $((number * 1024)) ;;
    Mi) echo $((number * MIB)) ;;
    Gi) echo $((number * 1024 * MIB)) ;;
  esac
}

# The smallest Cloud Run memory size of at least $1 MiB; nothing when none is that big.
smallest_memory() {
  local size
  for size in "${MEMORY_SIZES[@]}"; do
    if (($(memory_bytes "$size") >= $1 * MIB)); then
      echo "$size"
      return
    fi
  done
}

# Cloud Run's minimum CPUs for $1 bytes of memory (documented under "memory limits").
min_cpu() {
  local gib=$((1024 * MIB))
  if (($1 > 24 * gib)); then
    echo 8
  elif (($1 > 16 * gib)); then
    echo 6
  elif (($1 > 8 * gib)); then
    echo 4
  elif (($1 > 4 * gib)); then
    echo 2
  else
    echo 1
  fi
}

# What deploy.sh does with each variable a function reads (its zod schema: functions/<function>/config.ts, built on shared/config.ts),
# one list per function and kind; `./deploy.sh settings` prints them, and
# test/integration/deploy-settings.test.ts holds them to the schemas and to the env files written.
#   pass    passed on when set in deploy.sh's environment
#   set     written by deploy.sh itself, from its own settings (see --help)
#   secret  mounted from Secret Manager (the secret named by <NAME>_SECRET), never in an env file
#   local   never set on a deployed function (local runs only, or unused by that function)
COMMON_VARS=(SNAPSHOT_TIMEOUT_MS ID_TYPES_JSON LOG_LEVEL LOG_USER_IDS)
PROFILE_VARS=(LINKED_IDS_MAX MAX_ID_LENGTH SEGMENTS_BIN REFRESH_INTERVAL_SECS REFRESH_RETRY_MAX_SECS
  MAX_STALENESS_SECS FIRST_LOAD_TIMEOUT_MS REQUEST_BUDGET_MS RETRY_AFTER_SECS
  AEROSPIKE_CONNECT_TIMEOUT_MS AEROSPIKE_SOCKET_TIMEOUT_MS AEROSPIKE_TOTAL_TIMEOUT_MS
  AEROSPIKE_MAX_RETRIES BATCH_MAX_IDS BATCH_MAX_PROFILES BATCH_MAX_ANSWER_BYTES LOG_REQUESTS LOG_SLOW_MS
  AEROSPIKE_MAX_SOCKET_IDLE_SECS AEROSPIKE_LOG_LEVEL AEROSPIKE_TLS_NAME AEROSPIKE_AUTH_MODE)
JOB_VARS=(MIN_ROWS_RATIO)
CATALOG_VARS=(CATALOG_ID_FIELD CATALOG_FIELDS MONGO_BATCH_SIZE MONGO_MAX_TIME_MS
  MONGO_CONNECT_TIMEOUT_MS)
# The query's settings; the window's two are written explicitly in Bigtable mode.
QUERY_VARS=(MAPPING_PERSON_COLUMN MAPPING_ID_COLUMN MAPPING_TYPE_COLUMN MAPPING_PARTITION_COLUMN
  BIGQUERY_PAGE_SIZE)
MAPPING_VARS=("${QUERY_VARS[@]}" MAPPING_LOOKBACK_DAYS MAPPING_WINDOW_DAYS)
BIGTABLE_VARS=(MAPPING_STORE BIGTABLE_PROJECT BIGTABLE_INSTANCE BIGTABLE_TABLE BIGTABLE_APP_PROFILE)
JOB_SET=(SNAPSHOT_URI GOOGLE_CLOUD_PROJECT JOB_TIMEOUT_MS)
BIGQUERY_SET=(MAPPING_TABLE BIGQUERY_PROJECT BIGQUERY_LOCATION)

# shellcheck disable=SC2034 # the _SET and _LOCAL lists are read by name, in settings()
{
  PROFILE_PASS=("${COMMON_VARS[@]}" "${PROFILE_VARS[@]}")
  PROFILE_SET=(SNAPSHOT_URI GOOGLE_CLOUD_PROJECT PROFILE_STORE AEROSPIKE_HOSTS AEROSPIKE_NAMESPACE
    AEROSPIKE_USER MAPPING_MAX_BYTES MAPPING_WINDOW_DAYS "${BIGTABLE_VARS[@]}"
    AEROSPIKE_MAX_CONNS_PER_NODE NODE_ENV)
  # Each secret variable NAME comes from the secret named by the setting NAME_SECRET.
  PROFILE_SECRET=(AEROSPIKE_PASSWORD API_KEYS OPERATOR_API_KEYS AEROSPIKE_TLS_CA AEROSPIKE_TLS_CERT
    AEROSPIKE_TLS_KEY)
  # The embedded store is for local runs (deployed: PROFILE_STORE=aerospike); deployed functions
  # authenticate as their service account, never with a pasted token.
  PROFILE_LOCAL=(EMBEDDED_PROFILES_PATH GOOGLE_OAUTH_ACCESS_TOKEN)
  CATALOG_PASS=("${COMMON_VARS[@]}" "${JOB_VARS[@]}" "${CATALOG_VARS[@]}")
  CATALOG_SET=("${JOB_SET[@]}" MONGO_DATABASE MONGO_COLLECTION)
  CATALOG_SECRET=(MONGO_URI)
  CATALOG_LOCAL=(GOOGLE_OAUTH_ACCESS_TOKEN)
  MAPPING_PASS=("${COMMON_VARS[@]}" "${JOB_VARS[@]}" "${MAPPING_VARS[@]}")
  MAPPING_SET=("${JOB_SET[@]}" "${BIGQUERY_SET[@]}" MAPPING_MAX_BYTES)
  MAPPING_SECRET=()
  MAPPING_LOCAL=(GOOGLE_OAUTH_ACCESS_TOKEN)
  SYNC_PASS=("${COMMON_VARS[@]}" "${JOB_VARS[@]}" "${QUERY_VARS[@]}" SYNC_SHARD_PERSONS)
  SYNC_SET=("${JOB_SET[@]}" "${BIGQUERY_SET[@]}" "${BIGTABLE_VARS[@]:1}" MAPPING_WINDOW_DAYS
    MAPPING_LOOKBACK_DAYS MAPPING_SYNC_METHOD SYNC_TOPIC SYNC_DEAD_LETTER_SUBSCRIPTION)
  SYNC_SECRET=()
  # The sync job writes Bigtable, not a snapshot: no memory budget applies to it. Its shards go
  # to the shard workers (SYNC_TOPIC), never written inline.
  SYNC_LOCAL=(GOOGLE_OAUTH_ACCESS_TOKEN MAPPING_MAX_BYTES SYNC_INLINE_WORKERS)
  # The sync's shard workers (Bigtable mode): where they write, where the version's rows are.
  SHARD_PASS=("${COMMON_VARS[@]}" BIGQUERY_PAGE_SIZE)
  SHARD_SET=(GOOGLE_CLOUD_PROJECT "${BIGTABLE_VARS[@]:1}" BIGQUERY_PROJECT BIGQUERY_LOCATION
    SYNC_SHARD_TIMEOUT_MS)
  SHARD_SECRET=()
  SHARD_LOCAL=(GOOGLE_OAUTH_ACCESS_TOKEN SNAPSHOT_URI)
}

# Prints every function's variables with what deploy.sh does with them (the lists above).
settings() {
  local fn kind list name
  for fn in profile:PROFILE snapshotCatalog:CATALOG snapshotMapping:MAPPING syncMapping:SYNC \
    syncMappingShard:SHARD; do
    for kind in pass set secret local; do
      list="${fn#*:}_${kind^^}[@]"
      for name in "${!list}"; do
        printf '%-16s %-7s %s\n' "${fn%%:*}" "$kind" "$name"
      done
    done
  done
}

usage() {
  cat <<EOF
Usage: ./deploy.sh [deploy|verify|teardown|settings] [--dry-run] [--help]
       ./deploy.sh rollback catalog|mapping VERSION [--dry-run]

Commands:
  deploy (default)           create or update everything (DRY_RUN=1: print every command and
                             each function's env file instead, secrets not shown)
  verify                     check the mapping query against the real MAPPING_TABLE with a
                             BigQuery dry run (free): locally, then through the deployed mapping
                             job when it exists. Needs only PROJECT_ID and MAPPING_TABLE. With
                             MAPPING_STORE=bigtable it also checks the table and its column
                             families; with EDGE=lb, that /health answers through the load
                             balancer in every region of REGIONS; with MONITORING=on, it lists
                             which alerts, metrics, SLOs and checks exist and which are missing.
  rollback KIND VERSION      pause KIND's scheduler job, then have the job republish VERSION
                             (e.g. 20261130T043000Z-1a2b3c4d, from gs://BUCKET/SNAPSHOT_PREFIX/KIND/)
                             as a new version; prints how to resume the job. Needs PROJECT_ID.
  teardown                   delete the monitoring deploy.sh made (MONITORING=on), the functions
                             and scheduler jobs, and with EDGE=lb the load
                             balancer and its parts (TEARDOWN_ALL=1: also the bucket, the service
                             accounts and, with MAPPING_STORE=bigtable, the table, its app
                             profiles and the instance when no other table is left in it)
  settings                   list each function's variables and what deploy.sh does with them:
                             pass (passed on when set here), set (deploy.sh writes it), secret
                             (from Secret Manager), local (never deployed)

Required:
  PROJECT_ID                 Google Cloud project to deploy to
  AEROSPIKE_HOSTS            Aerospike seeds, host[:port][,host[:port]...] (with REGIONS: the
                             seeds of the regions that have no AEROSPIKE_HOSTS_<REGION>)
  MONGO_DATABASE             database holding the segment collection
  MAPPING_TABLE              BigQuery identity mapping, project.dataset.table

Settings (default):
  REGION                     europe-west1
  NAME_PREFIX                profile-api (functions, service accounts, scheduler jobs)
  BUCKET                     <PROJECT_ID>-profile-api-snapshots
  BUCKET_LOCATION            <REGION>; with several REGIONS, the multi-region of REGION (US, EU,
                             ASIA), warning about the regions outside it
  SNAPSHOT_PREFIX            profile-api (folder inside the bucket; each job may write only its
                             own <SNAPSHOT_PREFIX>/<kind>/, the profile function only reads)
  SNAPSHOT_RETENTION_DAYS    30 (superseded snapshot versions are deleted after this)
  RUNTIME                    nodejs24
  BUILD_SERVICE_ACCOUNT      unset: deploy.sh creates <NAME_PREFIX>-build with the roles a build
                             needs and builds every function as it:
                             ${BUILD_ROLES[*]}
                             set: that account's email, used as it is
  VPC_CONNECTOR              unset (Serverless VPC Access connector to reach a private Aerospike)
  VPC_NETWORK, VPC_SUBNET    unset (Direct VPC egress instead of a connector: the VPC network and
                             its subnet in the region, from which instances take their addresses;
                             subnet unset: the one named like the network)
  VPC_EGRESS                 private-ranges-only (or all: every outbound request through the VPC)
  AEROSPIKE_PUBLIC           false: an AEROSPIKE_HOSTS seed in a private range (10/8, 172.16/12,
                             192.168/16, 100.64/10) needs VPC egress in its region, and any other
                             seed does too unless this is true (seeds reached over the internet
                             on purpose; the network is then Aerospike's only boundary)
  MAPPING_IDS                10000000 (ids expected in the identity mapping; sizes the profile
                             function)
  PROFILE_MEMORY             the smallest Cloud Run size (${MEMORY_SIZES[*]}) of
                             at least ${PROFILE_BASE_MIB} MiB + MAPPING_IDS * ${REFRESH_BYTES_PER_ID} B, as a refresh holds the
                             old and the new mapping at once: $(smallest_memory "$(needed_mib 10000000)") for 10 million ids.
                             Set below that, it warns, and MAPPING_MAX_BYTES follows it.
                             MAPPING_STORE=bigtable: 1Gi (the mapping is not in memory).
  PROFILE_CPU                Cloud Run's minimum for PROFILE_MEMORY: 1; above 4Gi 2, above 8Gi 4,
                             above 16Gi 6, above 24Gi 8
  MAPPING_MAX_BYTES          (PROFILE_MEMORY - ${PROFILE_BASE_MIB} MiB) * ${INDEX_BYTES_PER_ID} / ${REFRESH_BYTES_PER_ID} bytes, rounded down:
                             the largest mapping index a profile instance loads (${INDEX_BYTES_PER_ID} B per id
                             loaded, ${REFRESH_BYTES_PER_ID} B per id during a refresh); the mapping job
                             refuses to publish a bigger one. The figures are measured ones,
                             at the top of deploy.sh. Not used with MAPPING_STORE=bigtable.
  PROFILE_CPU_ALWAYS_ALLOCATED  false (true: no CPU throttling outside requests, so background
                             snapshot refreshes run at full speed, at the price of billing each
                             instance for its whole lifetime. Back to false changes nothing on
                             the service: gcloud run services update NAME --cpu-throttling)
  PROFILE_MIN_INSTANCES      1
  PROFILE_MAX_INSTANCES      20
  PROFILE_CONCURRENCY        80
  PROFILE_TIMEOUT            60s
  PROFILE_INGRESS            all (or internal, internal-and-gclb; EDGE=lb: internal-and-gclb)
  PROFILE_ALLOW_UNAUTHENTICATED  false (true: anyone may invoke; use API keys then)
  PROFILE_INVOKERS           unset (comma-separated members granted run.invoker on profile)
  JOB_MEMORY                 1Gi
  JOB_CPU                    1
  JOB_TIMEOUT                1800s (function timeout = scheduler attempt deadline)
  CATALOG_SCHEDULE           "0 * * * *" (hourly)
  MAPPING_SCHEDULE           "30 4 * * *" (daily, after the partition lands)
  SCHEDULER_TIME_ZONE        Etc/UTC
  MONGO_URI_SECRET           profile-api-mongo-uri (Secret Manager; created from MONGO_URI if
                             missing and MONGO_URI is set)
  SECRET_REPLICATION         user-managed (a secret deploy.sh creates is stored in SECRET_LOCATIONS
                             only, which location-restricting organisation policies accept; or
                             automatic: Google's global replication)
  SECRET_LOCATIONS           REGION and REGIONS (comma-separated)
  MONGO_COLLECTION           segments
  AEROSPIKE_NAMESPACE        profiles
  AEROSPIKE_USER             unset; with AEROSPIKE_PASSWORD_SECRET (a Secret Manager secret)
  API_KEYS_SECRET            unset (Secret Manager secret holding the profile API keys)
  OPERATOR_API_KEYS_SECRET   unset (Secret Manager secret holding the operators' keys: a request
                             with one of them in x-api-key gets /health's details)
  AEROSPIKE_MAX_CONNS_PER_NODE  PROFILE_CONCURRENCY x 2 + 8 (each request in flight holds one
                             connection per node, a timed-out socket stays counted until closed,
                             plus health pings); deploy.sh prints what it means for the server's
                             proto-fd-max at PROFILE_MAX_INSTANCES
  AEROSPIKE_TLS_CA_SECRET    unset (Secret Manager secret holding the cluster's CA certificate,
                             PEM, for TLS; with AEROSPIKE_TLS_NAME, Enterprise Edition)
  AEROSPIKE_TLS_CERT_SECRET, AEROSPIKE_TLS_KEY_SECRET
                             unset (secrets holding a client certificate and its key, PEM:
                             mutual TLS, required with AEROSPIKE_AUTH_MODE=PKI)
  BIGQUERY_PROJECT           <PROJECT_ID> (runs and pays for the mapping query)
  BIGQUERY_LOCATION          unset
  GOOGLE_OAUTH_ACCESS_TOKEN  verify only: token for BigQuery (default: gcloud auth
                             print-access-token); with it and BIGQUERY_EMULATOR_HOST, verify
                             runs the mapping check against that server, without gcloud
  DRY_RUN                    0
  The functions' own variables of kind "pass" in ./deploy.sh settings (LINKED_IDS_MAX,
  REQUEST_BUDGET_MS, LOG_REQUESTS, BATCH_MAX_IDS, ID_TYPES_JSON, CATALOG_FIELDS, MAPPING_*_COLUMN,
  ...) set here are passed on to them.

Mapping store:
  MAPPING_STORE              snapshot: the mapping job publishes a snapshot that every profile
                             instance holds in memory. bigtable: the sync job
                             <NAME_PREFIX>-sync-mapping writes the mapping into a Bigtable table
                             that the profile function reads; no snapshot mapping job
  BIGTABLE_PROJECT           <PROJECT_ID>
  BIGTABLE_INSTANCE          <NAME_PREFIX> (created when missing, else reused)
  BIGTABLE_CLUSTER           <NAME_PREFIX>-c1 (the instance's one cluster)
  BIGTABLE_ZONE              <REGION>-b
  BIGTABLE_NODES             1 (with BIGTABLE_MAX_NODES: the autoscaling minimum)
  BIGTABLE_MAX_NODES         unset (set: autoscaling from BIGTABLE_NODES up to this)
  BIGTABLE_CPU_TARGET        60 (autoscaling's CPU utilisation target, percent)
  BIGTABLE_STORAGE_TYPE      SSD (or HDD; fixed when the instance is created)
  BIGTABLE_TABLE             identity-mapping: family l with GC rule "max age MAPPING_WINDOW_DAYS
                             + MAPPING_LOOKBACK_DAYS days or 2 versions" (both days default 1 and 7;
                             a re-run updates the rule with cbt when they change), family m
                             with 1 version
  BIGTABLE_APP_PROFILE       <NAME_PREFIX> (the profile function's reads: single-cluster routing,
                             high priority)
  BIGTABLE_SYNC_APP_PROFILE  <NAME_PREFIX>-sync (the sync job's writes: single-cluster routing,
                             low priority, as BigQuery's EXPORT DATA to Bigtable requires)
  MAPPING_SYNC_METHOD        unset: the job's default, mutations (the only one built)
  SYNC_SCHEDULE              "40 * * * *" (hourly)
  SYNC_MAX_WORKERS           BIGTABLE_NODES (shards written at once: max instances of the shard
                             worker <NAME_PREFIX>-sync-mapping-shard, concurrency 1; one worker
                             writes about what one node takes, see README "How far it scales")
  SYNC_MAX_DELIVERY_ATTEMPTS 100 (Pub/Sub deliveries of a shard before its dead-letter topic; 5
                             to 100; a refusal at max instances counts as one)

Front door (EDGE=lb):
  EDGE                       unset: callers use the function's own URL. lb: a global external
                             Application Load Balancer for DOMAIN (Google-managed certificate,
                             HTTP redirected to HTTPS), Cloud Armor in front, and the profile
                             function reachable only through it (ingress internal-and-gclb).
                             Needs API_KEYS_SECRET or EDGE_IAP=true: deploy.sh refuses a load
                             balancer that would leave the API open to anyone.
  DOMAIN                     required with EDGE=lb: the API's host name (point its A record at
                             the address deploy.sh prints)
  REGIONS                    <REGION>; with EDGE=lb, comma-separated regions that each run
                             the profile function behind the one load balancer (the jobs stay
                             in REGION)
  AEROSPIKE_HOSTS_<REGION>   that region's Aerospike seeds, e.g. AEROSPIKE_HOSTS_US_CENTRAL1
                             (dashes as underscores); else AEROSPIKE_HOSTS, with a warning
  VPC_CONNECTOR_<REGION>     that region's connector; else VPC_CONNECTOR
  VPC_NETWORK_<REGION>, VPC_SUBNET_<REGION>  that region's Direct VPC egress; else VPC_NETWORK,
                             VPC_SUBNET
  RATE_LIMIT_PER_MIN         6000 (requests per client per minute; above it the edge answers 429)
  RATE_LIMIT_KEY             ip (or api-key: a request whose x-api-key starts with one of
                             RATE_LIMIT_API_KEY_PREFIXES counts against that key; every other
                             one, without a key or with a key nobody issued, against its address)
  RATE_LIMIT_API_KEY_PREFIXES  with RATE_LIMIT_KEY=api-key: the start of each key issued (4 to 32
                             characters, at most ${MAX_KEY_PREFIXES}; the policy shows them, so keep the rest of
                             each key secret and long)
  ALLOWED_CIDRS              unset (up to ${MAX_ALLOWED_CIDRS} comma-separated source ranges: only they may call,
                             others get 403)
  EDGE_IAP                   false (true: Identity-Aware Proxy on the backend services; callers
                             need roles/iap.httpsResourceAccessor)
  IAP_MEMBERS                unset (comma-separated members granted IAP access)
  IAP_OAUTH_CLIENT_ID, IAP_OAUTH_CLIENT_SECRET_SECRET  unset: Google's managed OAuth client. Set:
                             IAP uses your OAuth client (its id, and the Secret Manager secret
                             holding its secret, read at deploy time and never printed)
  IAP_PROGRAMMATIC_CLIENTS   unset (comma-separated OAuth client ids whose tokens IAP accepts from
                             programs: user accounts calling from a CLI or an app)
  EDGE_JSON_ERRORS           true (the edge's own 403 and 429 answer our JSON error body, from
                             a public bucket gs://<PROJECT_ID>-<NAME_PREFIX>-edge-errors holding
                             only those two bodies; false: Google's HTML error pages)
  VERIFY_API_KEY             verify only: an API key for /health through the load balancer (one of
                             OPERATOR_API_KEYS_SECRET's keys gets /health's details too)
  VERIFY_ID_TOKEN            verify only, with EDGE_IAP: a token IAP accepts for the caller

Monitoring (README "When an alert fires" argues each default):
  MONITORING                 on: log-based metrics, alerting policies, a dashboard, SLOs with
                             burn-rate alerts and uptime checks on /health, kept current by every
                             run. off: deploy.sh (and teardown) leave Cloud Monitoring alone
  ALERT_EMAIL                unset (comma-separated addresses: an email channel each, found or
                             created). With neither this nor ALERT_CHANNELS, alerts are off
  ALERT_CHANNELS             unset (channels you have, e.g. Slack or PagerDuty:
                             projects/PROJECT/notificationChannels/ID or the ID, comma-separated)
  ALERT_5XX_RATIO            0.05 (share of the profile function's answers that are 5xx, 5 minutes)
  ALERT_LATENCY_P99_MS       500 (its p99 latency, held 5 minutes)
  ALERT_MEMORY_RATIO         0.9 (memory used by its instances, p99, held 5 minutes)
  ALERT_BACKEND_ERRORS       10 (503 answers naming one backend, in 5 minutes)
  ALERT_REFRESH_FAILURES     10 (failed snapshot loads in a row on an instance)
  ALERT_CATALOG_SUCCESS_HOURS, ALERT_MAPPING_SUCCESS_HOURS, ALERT_SYNC_SUCCESS_HOURS
                             3, 25, 3 (no successful run of that job for that long; at most 25)
  ALERT_SYNC_LAG_HOURS       48 (MAPPING_STORE=bigtable: the checkpoint partition ended that long ago)
  ALERT_JOB_FAILED_ATTEMPTS  2 (failed scheduler attempts of one job within an hour)
  ALERT_MAPPING_BUDGET_RATIO 0.9 (a published mapping at this share of MAPPING_MAX_BYTES or more)
  SLO_AVAILABILITY           0.999 (answers without a 5xx, over SLO_PERIOD_DAYS)
  SLO_LATENCY_MS, SLO_LATENCY_GOAL  500, 0.99 (the share of answers within SLO_LATENCY_MS)
  SLO_PERIOD_DAYS            28 (the SLOs' rolling window, 1 to 30)
  UPTIME_PERIOD_MINS         5 (how often each checker region calls /health: 1, 5, 10 or 15)
  UPTIME_API_KEY_SECRET      unset (with API_KEYS_SECRET: a Secret Manager secret holding a key the
                             uptime checks send, masked in their configuration; without it, no
                             uptime check)
EOF
}

usage_error() {
  echo "deploy.sh: $*" >&2
  sed -n '1,2p' <<<"$(usage)" >&2
  exit 2
}

ARGS=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    -*) usage_error "unknown argument: $arg (see --help)" ;;
    *) ARGS+=("$arg") ;;
  esac
done
ACTION=${ARGS[0]:-deploy}
case "$ACTION" in
  deploy | verify | teardown | settings)
    ((${#ARGS[@]} <= 1)) || usage_error "unexpected argument: ${ARGS[1]} (see --help)"
    ;;
  rollback)
    ((${#ARGS[@]} == 3)) || usage_error "rollback takes a KIND and a VERSION"
    ROLLBACK_KIND=${ARGS[1]}
    ROLLBACK_VERSION=${ARGS[2]}
    [[ $ROLLBACK_KIND == catalog || $ROLLBACK_KIND == mapping ]] ||
      usage_error "rollback KIND must be catalog or mapping, not '$ROLLBACK_KIND'"
    [[ $ROLLBACK_VERSION =~ $VERSION_PATTERN ]] ||
      usage_error "rollback VERSION must look like 20261130T043000Z-1a2b3c4d, not '$ROLLBACK_VERSION'"
    ;;
  *) usage_error "unknown argument: $ACTION (see --help)" ;;
esac

if [[ $ACTION == settings ]]; then
  settings
  exit 0
fi

DRY_RUN=${DRY_RUN:-0}
REGION=${REGION:-europe-west1}
NAME_PREFIX=${NAME_PREFIX:-profile-api}
RUNTIME=${RUNTIME:-nodejs24}
SNAPSHOT_PREFIX=${SNAPSHOT_PREFIX:-profile-api}
SNAPSHOT_RETENTION_DAYS=${SNAPSHOT_RETENTION_DAYS:-30}
VPC_CONNECTOR=${VPC_CONNECTOR:-}
VPC_NETWORK=${VPC_NETWORK:-}
VPC_SUBNET=${VPC_SUBNET:-}
VPC_EGRESS=${VPC_EGRESS:-private-ranges-only}
AEROSPIKE_PUBLIC=${AEROSPIKE_PUBLIC:-false}
MAPPING_IDS=${MAPPING_IDS:-10000000}
# Unset: sized by size_profile (from MAPPING_IDS), or by size_bigtable_profile.
PROFILE_MEMORY=${PROFILE_MEMORY:-}
PROFILE_CPU=${PROFILE_CPU:-}
MAPPING_MAX_BYTES=${MAPPING_MAX_BYTES:-}
PROFILE_CPU_ALWAYS_ALLOCATED=${PROFILE_CPU_ALWAYS_ALLOCATED:-false}
PROFILE_MIN_INSTANCES=${PROFILE_MIN_INSTANCES:-1}
PROFILE_MAX_INSTANCES=${PROFILE_MAX_INSTANCES:-20}
PROFILE_CONCURRENCY=${PROFILE_CONCURRENCY:-80}
PROFILE_TIMEOUT=${PROFILE_TIMEOUT:-60s}
# check_org_policies sets it false where domain-restricted sharing forbids allUsers.
INVOKER_IAM_CHECK=true
# Whether it was set: EDGE=lb decides the ingress itself and refuses a contrary setting.
PROFILE_INGRESS_SET=${PROFILE_INGRESS:-}
PROFILE_INGRESS=${PROFILE_INGRESS:-all}
PROFILE_ALLOW_UNAUTHENTICATED=${PROFILE_ALLOW_UNAUTHENTICATED:-false}
PROFILE_INVOKERS=${PROFILE_INVOKERS:-}
JOB_MEMORY=${JOB_MEMORY:-1Gi}
JOB_CPU=${JOB_CPU:-1}
JOB_TIMEOUT=${JOB_TIMEOUT:-1800s}
CATALOG_SCHEDULE=${CATALOG_SCHEDULE:-0 * * * *}
MAPPING_SCHEDULE=${MAPPING_SCHEDULE:-30 4 * * *}
SYNC_SCHEDULE=${SYNC_SCHEDULE:-40 * * * *}
SCHEDULER_TIME_ZONE=${SCHEDULER_TIME_ZONE:-Etc/UTC}
MONGO_URI_SECRET=${MONGO_URI_SECRET:-profile-api-mongo-uri}
MONGO_COLLECTION=${MONGO_COLLECTION:-segments}
AEROSPIKE_NAMESPACE=${AEROSPIKE_NAMESPACE:-profiles}
AEROSPIKE_USER=${AEROSPIKE_USER:-}
AEROSPIKE_PASSWORD_SECRET=${AEROSPIKE_PASSWORD_SECRET:-}
AEROSPIKE_TLS_CA_SECRET=${AEROSPIKE_TLS_CA_SECRET:-}
AEROSPIKE_TLS_CERT_SECRET=${AEROSPIKE_TLS_CERT_SECRET:-}
AEROSPIKE_TLS_KEY_SECRET=${AEROSPIKE_TLS_KEY_SECRET:-}
# Unset: sized from PROFILE_CONCURRENCY by size_aerospike_connections.
AEROSPIKE_MAX_CONNS_PER_NODE=${AEROSPIKE_MAX_CONNS_PER_NODE:-}
API_KEYS_SECRET=${API_KEYS_SECRET:-}
OPERATOR_API_KEYS_SECRET=${OPERATOR_API_KEYS_SECRET:-}
BIGQUERY_LOCATION=${BIGQUERY_LOCATION:-}
MAPPING_STORE=${MAPPING_STORE:-snapshot}
MAPPING_SYNC_METHOD=${MAPPING_SYNC_METHOD:-}
EDGE=${EDGE:-}
DOMAIN=${DOMAIN:-}
RATE_LIMIT_PER_MIN=${RATE_LIMIT_PER_MIN:-6000}
RATE_LIMIT_KEY=${RATE_LIMIT_KEY:-ip}
RATE_LIMIT_API_KEY_PREFIXES=${RATE_LIMIT_API_KEY_PREFIXES:-}
ALLOWED_CIDRS=${ALLOWED_CIDRS:-}
EDGE_IAP=${EDGE_IAP:-false}
IAP_OAUTH_CLIENT_ID=${IAP_OAUTH_CLIENT_ID:-}
IAP_OAUTH_CLIENT_SECRET_SECRET=${IAP_OAUTH_CLIENT_SECRET_SECRET:-}
IAP_PROGRAMMATIC_CLIENTS=${IAP_PROGRAMMATIC_CLIENTS:-}
IAP_MEMBERS=${IAP_MEMBERS:-}
EDGE_JSON_ERRORS=${EDGE_JSON_ERRORS:-true}

[[ $MAPPING_STORE == snapshot || $MAPPING_STORE == bigtable ]] ||
  die "MAPPING_STORE must be snapshot or bigtable"
[[ -z $EDGE || $EDGE == lb ]] || die "EDGE must be lb or unset"
[[ -n ${PROJECT_ID:-} ]] || die "PROJECT_ID is required (see --help)"
BUCKET=${BUCKET:-${PROJECT_ID}-profile-api-snapshots}
# Unset: chosen from the regions by choose_bucket_location.
BUCKET_LOCATION=${BUCKET_LOCATION:-}
BIGQUERY_PROJECT=${BIGQUERY_PROJECT:-$PROJECT_ID}
SNAPSHOT_URI="gs://${BUCKET}/${SNAPSHOT_PREFIX}"

BIGTABLE_PROJECT=${BIGTABLE_PROJECT:-$PROJECT_ID}
BIGTABLE_INSTANCE=${BIGTABLE_INSTANCE:-$NAME_PREFIX}
BIGTABLE_CLUSTER=${BIGTABLE_CLUSTER:-${NAME_PREFIX}-c1}
BIGTABLE_ZONE=${BIGTABLE_ZONE:-${REGION}-b}
BIGTABLE_NODES=${BIGTABLE_NODES:-1}
BIGTABLE_MAX_NODES=${BIGTABLE_MAX_NODES:-}
BIGTABLE_CPU_TARGET=${BIGTABLE_CPU_TARGET:-60}
BIGTABLE_STORAGE_TYPE=${BIGTABLE_STORAGE_TYPE:-SSD}
BIGTABLE_TABLE=${BIGTABLE_TABLE:-identity-mapping}
BIGTABLE_APP_PROFILE=${BIGTABLE_APP_PROFILE:-$NAME_PREFIX}
BIGTABLE_SYNC_APP_PROFILE=${BIGTABLE_SYNC_APP_PROFILE:-${NAME_PREFIX}-sync}
SYNC_MAX_WORKERS=${SYNC_MAX_WORKERS:-$BIGTABLE_NODES}
SYNC_MAX_DELIVERY_ATTEMPTS=${SYNC_MAX_DELIVERY_ATTEMPTS:-100}
if [[ $MAPPING_STORE == bigtable ]]; then
  # The table's GC rule is built from these, so the functions get them explicitly too
  # (the functions' own defaults).
  MAPPING_WINDOW_DAYS=${MAPPING_WINDOW_DAYS:-1}
  MAPPING_LOOKBACK_DAYS=${MAPPING_LOOKBACK_DAYS:-7}
fi

PROFILE_FN=${NAME_PREFIX}
CATALOG_FN=${NAME_PREFIX}-snapshot-catalog
MAPPING_FN=${NAME_PREFIX}-snapshot-mapping
SYNC_FN=${NAME_PREFIX}-sync-mapping
# The sync's shard dispatch (Bigtable mode; see deploy_sync_workers).
SHARD_FN=${NAME_PREFIX}-sync-mapping-shard
SHARD_TOPIC=${NAME_PREFIX}-sync-shards
SHARD_PUSH=${NAME_PREFIX}-sync-shards-push
SHARD_DEAD=${NAME_PREFIX}-sync-shards-dead
sa_email() { echo "${NAME_PREFIX}-$1@${PROJECT_ID}.iam.gserviceaccount.com"; }
PROFILE_SA=$(sa_email profile)
CATALOG_SA=$(sa_email catalog)
MAPPING_SA=$(sa_email mapping)
SYNC_SA=$(sa_email sync)
PUSH_SA=$(sa_email push)
SCHEDULER_SA=$(sa_email scheduler)
# Builds run as this account: new projects build as the Compute Engine default account, which
# often lacks the builder role or is disabled by organisation policy. Unset: created here.
BUILD_SERVICE_ACCOUNT=${BUILD_SERVICE_ACCOUNT:-}
BUILD_SA=${BUILD_SERVICE_ACCOUNT:-$(sa_email build)}

# The front door's parts (EDGE=lb). Region-specific ones add -<region>.
EDGE_ADDRESS=${NAME_PREFIX}-ip
EDGE_POLICY=${NAME_PREFIX}-edge
EDGE_SSL_POLICY=${NAME_PREFIX}-tls
EDGE_NEG=${NAME_PREFIX}-neg
EDGE_BACKEND=${NAME_PREFIX}-backend
EDGE_URL_MAP=${NAME_PREFIX}-urlmap
EDGE_REDIRECT_MAP=${NAME_PREFIX}-http-redirect
EDGE_HTTPS_PROXY=${NAME_PREFIX}-https-proxy
EDGE_HTTP_PROXY=${NAME_PREFIX}-http-proxy
EDGE_HTTPS_RULE=${NAME_PREFIX}-https
EDGE_HTTP_RULE=${NAME_PREFIX}-http
EDGE_ERROR_BUCKET=${PROJECT_ID}-${NAME_PREFIX}-edge-errors
EDGE_ERROR_BACKEND=${NAME_PREFIX}-edge-errors
COMPUTE_API=https://www.googleapis.com/compute/v1/projects/${PROJECT_ID}/global

WORK_DIR=${DEPLOY_WORK_DIR:-$(mktemp -d)}
mkdir -p "$WORK_DIR"
if [[ -z ${DEPLOY_WORK_DIR:-} && $DRY_RUN != 1 ]]; then
  trap 'rm -rf "$WORK_DIR"' EXIT
fi

# Where secrets deploy.sh creates are stored: user-managed replication in the regions that read
# them (organisations restricting resource locations refuse automatic, global replication).
SECRET_REPLICATION=${SECRET_REPLICATION:-user-managed}
SECRET_LOCATIONS=${SECRET_LOCATIONS:-}

# The regions running the profile function: REGIONS, else REGION.
PROFILE_REGIONS=()
IFS=, read -r -a region_list <<<"${REGIONS:-$REGION}"
for region in "${region_list[@]}"; do
  region=${region//[[:space:]]/}
  [[ -n $region ]] || continue
  [[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "REGIONS: '$region' is not a region name"
  if [[ " ${PROFILE_REGIONS[*]} " != *" $region "* ]]; then PROFILE_REGIONS+=("$region"); fi
done
((${#PROFILE_REGIONS[@]})) || die "REGIONS names no region"
unset region region_list

[[ $SECRET_REPLICATION == user-managed || $SECRET_REPLICATION == automatic ]] ||
  die "SECRET_REPLICATION must be user-managed or automatic"
if [[ -z $SECRET_LOCATIONS ]]; then
  SECRET_LOCATIONS=$REGION
  for region in "${PROFILE_REGIONS[@]}"; do
    if [[ ,$SECRET_LOCATIONS, != *",$region,"* ]]; then SECRET_LOCATIONS+=",$region"; fi
  done
  unset region
fi
SECRET_LOCATIONS=${SECRET_LOCATIONS//[[:space:]]/}
[[ $SECRET_LOCATIONS =~ ^[a-z]+-[a-z]+[0-9]+(,[a-z]+-[a-z]+[0-9]+)*$ ]] ||
  die "SECRET_LOCATIONS must be comma-separated regions, e.g. europe-west1,europe-west4"

# Region $1 as in a per-region setting's name: upper case, dashes as underscores.
region_key() {
  local upper=${1^^}
  echo "${upper//-/_}"
}

# A per-region setting: NAME_<REGION>, else NAME.
region_setting() {
  local key
  key="$1_$(region_key "$2")"
  echo "${!key:-${!1:-}}"
}

# Whether a per-region setting has its own value for region $2.
has_region_setting() {
  local key
  key="$1_$(region_key "$2")"
  [[ -n ${!key:-} ]]
}

# Prints a command, then runs it unless DRY_RUN=1.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ $DRY_RUN != 1 ]]; then "$@"; fi
}

# Bounded retries for what IAM propagation breaks at random on a first run: Google documents that a
# new service account can take a minute or more to be usable, and a role grant several minutes.
# Back-off from DEPLOY_RETRY_FIRST_SECS, doubling up to a minute: about 5 minutes in all.
RETRY_ATTEMPTS=${DEPLOY_RETRY_ATTEMPTS:-8}
RETRY_FIRST_SECS=${DEPLOY_RETRY_FIRST_SECS:-10}
RETRY_MAX_SECS=60
# What gcloud says while an account or a grant has not propagated yet.
# (An alert on a log-based metric created moments before fails the same way until it is known.)
PROPAGATION_ERRORS='does not exist|NOT_FOUND|[Nn]ot found|PERMISSION_DENIED|[Pp]ermission .*denied|actAs|is not authorized|[Cc]annot find metric'

# As run, retrying a command that fails the way propagation delays make it fail (bounded); any
# other failure stops the run at once, with gcloud's message (shown as it comes).
run_retry() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  [[ $DRY_RUN != 1 ]] || return 0
  local attempt=1 delay=$RETRY_FIRST_SECS err=$WORK_DIR/retry.err
  until { "$@" 2>&1 1>&3 3>&- | tee "$err" >&2; } 3>&1; do
    grep -Eq "$PROPAGATION_ERRORS" "$err" || die "$1 $2 $3 failed (above)"
    ((attempt < RETRY_ATTEMPTS)) ||
      die "$1 $2 $3 still failed after $attempt attempts over the propagation delay of new service accounts and grants (above); run deploy.sh again later, or check the permissions it names"
    echo "deploy.sh: retrying in ${delay}s (attempt $((attempt + 1)) of $RETRY_ATTEMPTS): new service accounts and grants take minutes to propagate" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > RETRY_MAX_SECS ? RETRY_MAX_SECS : delay * 2))
  done
}

# Waits (bounded) until a service account just created is visible, before anything names it.
wait_for_service_account() {
  [[ $DRY_RUN != 1 ]] || return 0
  local attempt=1 delay=$RETRY_FIRST_SECS
  until gcloud iam service-accounts describe "$1" --project="$PROJECT_ID" >/dev/null 2>&1; do
    ((attempt < RETRY_ATTEMPTS)) ||
      die "service account $1 was created but is still not visible after $attempt attempts; run deploy.sh again later"
    echo "deploy.sh: waiting ${delay}s for service account $1 to be visible" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 > RETRY_MAX_SECS ? RETRY_MAX_SECS : delay * 2))
  done
}

# As run, with the value $1 shown as $2 in the printed line (a secret for gcloud's arguments).
run_hiding() {
  local value=$1 shown=$2 arg
  shift 2
  printf '+'
  for arg in "$@"; do printf ' %q' "${arg//"$value"/$shown}"; done
  printf '\n'
  if [[ $DRY_RUN != 1 ]]; then "$@"; fi
}

# Prints what a dry run does instead of a lookup: `would check COMMAND...`, `would read ...`.
would() {
  printf '# would %s:' "$1"
  shift
  printf ' %q' "$@"
  printf '\n'
}

# True when a describe-style command succeeds. A dry run checks nothing and plans a first deploy.
exists() {
  if [[ $DRY_RUN == 1 ]]; then
    would check "$@"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# Writes what a describe-style command ($2...) prints into file $1; fails when the command does.
# A dry run reads nothing (an empty file, and a failure: it plans a first deploy).
read_to() {
  local file=$1
  shift
  : >"$file"
  if [[ $DRY_RUN == 1 ]]; then
    would read "$@"
    return 1
  fi
  "$@" >"$file" 2>/dev/null
}

# $1 as the inside of a JSON string (a multi-line ID_TYPES_JSON stays one line).
json_chars() {
  local value=${1//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  value=${value//$'\r'/\\r}
  printf '%s' "${value//$'\t'/\\t}"
}

# Writes KEY: "value" lines (YAML with JSON-quoted strings) for --env-vars-file.
env_line() {
  printf '%s: "%s"\n' "$1" "$(json_chars "$2")"
}

# Passes on those of the functions' own settings that are set in this environment.
pass_through() {
  local name
  for name in "$@"; do
    if [[ -n ${!name:-} ]]; then env_line "$name" "${!name}"; fi
  done
}

# Fills in PROFILE_MEMORY, PROFILE_CPU and MAPPING_MAX_BYTES where unset (formulas in --help).
size_profile() {
  [[ $MAPPING_IDS =~ ^[0-9]+$ ]] || die "MAPPING_IDS must be a whole number of ids"
  local need memory
  need=$(needed_mib "$MAPPING_IDS")
  if [[ -z $PROFILE_MEMORY ]]; then
    PROFILE_MEMORY=$(smallest_memory "$need")
    [[ -n $PROFILE_MEMORY ]] ||
      die "MAPPING_IDS=$MAPPING_IDS needs $need MiB per profile instance, more than Cloud Run's largest (${MEMORY_SIZES[-1]})"
  fi
  memory=$(memory_bytes "$PROFILE_MEMORY")
  if ((memory < need * MIB)); then
    echo "deploy.sh: warning: PROFILE_MEMORY=$PROFILE_MEMORY is less than the $need MiB that MAPPING_IDS=$MAPPING_IDS ids need; the mapping job will refuse mappings over MAPPING_MAX_BYTES" >&2
  fi
  if [[ -z $PROFILE_CPU ]]; then PROFILE_CPU=$(min_cpu "$memory"); fi
  if [[ -z $MAPPING_MAX_BYTES ]]; then
    ((memory > PROFILE_BASE_MIB * MIB)) ||
      die "PROFILE_MEMORY=$PROFILE_MEMORY leaves no room for the mapping: a profile instance needs $PROFILE_BASE_MIB MiB besides it"
    MAPPING_MAX_BYTES=$(((memory - PROFILE_BASE_MIB * MIB) * INDEX_BYTES_PER_ID / REFRESH_BYTES_PER_ID))
  fi
  [[ $MAPPING_MAX_BYTES =~ ^[1-9][0-9]*$ ]] || die "MAPPING_MAX_BYTES must be a number of bytes"
  echo "# profile instances: $PROFILE_MEMORY, $PROFILE_CPU CPU (MAPPING_IDS=$MAPPING_IDS needs $need MiB); mappings up to MAPPING_MAX_BYTES=$MAPPING_MAX_BYTES"
}

# The Aerospike client's connections per node of a profile instance (AEROSPIKE_MAX_CONNS_PER_NODE),
# sized from PROFILE_CONCURRENCY unless set. Each request in flight holds at most one connection
# per node for its batch read (concurrency); a socket whose command timed out stays counted until
# the client closes it, so a burst of timeouts can hold as many again (concurrency); health pings
# and the odd retry overlapping a closing socket take a few more (8). More commands in flight than
# the limit fail at once with error -7, not queued. Prints what the cluster's nodes must accept.
size_aerospike_connections() {
  if [[ -z $AEROSPIKE_MAX_CONNS_PER_NODE ]]; then
    AEROSPIKE_MAX_CONNS_PER_NODE=$((PROFILE_CONCURRENCY * 2 + 8))
  fi
  [[ $AEROSPIKE_MAX_CONNS_PER_NODE =~ ^[1-9][0-9]{0,5}$ ]] ||
    die "AEROSPIKE_MAX_CONNS_PER_NODE must be a whole number of connections"
  if ((AEROSPIKE_MAX_CONNS_PER_NODE <= PROFILE_CONCURRENCY)); then
    echo "deploy.sh: warning: AEROSPIKE_MAX_CONNS_PER_NODE=$AEROSPIKE_MAX_CONNS_PER_NODE is not above PROFILE_CONCURRENCY=$PROFILE_CONCURRENCY: a full instance has no connection left for a health ping or a socket still closing after a timeout, and those requests fail with error -7" >&2
  fi
  # Regions with the same seeds read the same cluster: their instances add up on its nodes.
  local region seeds most=1 count
  declare -A sharing=()
  for region in "${PROFILE_REGIONS[@]}"; do
    seeds=$(region_setting AEROSPIKE_HOSTS "$region")
    count=$((${sharing[$seeds]:-0} + 1))
    sharing[$seeds]=$count
    if ((count > most)); then most=$count; fi
  done
  local total=$((AEROSPIKE_MAX_CONNS_PER_NODE * PROFILE_MAX_INSTANCES * most))
  echo "# Aerospike: up to $AEROSPIKE_MAX_CONNS_PER_NODE connections per node from each profile instance (PROFILE_CONCURRENCY=$PROFILE_CONCURRENCY x 2 + 8 unless set): up to $total on each node from PROFILE_MAX_INSTANCES=$PROFILE_MAX_INSTANCES instances in $most region(s); the server's proto-fd-max (default 15000) must be above that, with room for every other client"
  if ((total >= 15000)); then
    echo "deploy.sh: warning: up to $total connections per Aerospike node from the profile function alone: raise the server's proto-fd-max above it (and the node's open-file limit), or lower PROFILE_MAX_INSTANCES or AEROSPIKE_MAX_CONNS_PER_NODE" >&2
  fi
}

# Bigtable mode: the mapping lives in the table, so MAPPING_IDS sizes nothing.
size_bigtable_profile() {
  PROFILE_MEMORY=${PROFILE_MEMORY:-1Gi}
  local memory
  memory=$(memory_bytes "$PROFILE_MEMORY")
  if [[ -z $PROFILE_CPU ]]; then PROFILE_CPU=$(min_cpu "$memory"); fi
  echo "# profile instances: $PROFILE_MEMORY, $PROFILE_CPU CPU (MAPPING_STORE=bigtable: the mapping is read from Bigtable, not held in memory)"
}

# The job's own deadline stays inside the function timeout, so that it fails cleanly first.
job_timeout_ms() {
  local secs=${JOB_TIMEOUT%s}
  echo $(((secs - 60) * 1000))
}

# The env file of the profile function in region $1 (REGION's keeps its historical name).
profile_env_file() {
  if [[ $1 == "$REGION" ]]; then
    echo "$WORK_DIR/profile.env.yaml"
  else
    echo "$WORK_DIR/profile.$1.env.yaml"
  fi
}

# Where the functions find the Bigtable table, and the window both read; $1 is the app profile.
bigtable_env() {
  env_line BIGTABLE_PROJECT "$BIGTABLE_PROJECT"
  env_line BIGTABLE_INSTANCE "$BIGTABLE_INSTANCE"
  env_line BIGTABLE_TABLE "$BIGTABLE_TABLE"
  env_line BIGTABLE_APP_PROFILE "$1"
  env_line MAPPING_WINDOW_DAYS "$MAPPING_WINDOW_DAYS"
}

# What both mapping jobs (snapshot and Bigtable sync) are told about BigQuery and their deadline.
bigquery_job_env() {
  runtime_env
  env_line SNAPSHOT_URI "$SNAPSHOT_URI"
  env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
  env_line MAPPING_TABLE "$MAPPING_TABLE"
  env_line BIGQUERY_PROJECT "$BIGQUERY_PROJECT"
  if [[ -n $BIGQUERY_LOCATION ]]; then env_line BIGQUERY_LOCATION "$BIGQUERY_LOCATION"; fi
  env_line JOB_TIMEOUT_MS "$(job_timeout_ms)"
}

# What every function runs with. functions-framework answers an error that escapes a request
# (its per-request domain, or its uncaught-exception handler) with the error's message as an
# HTML body, unless NODE_ENV is production: then a bare 500.
runtime_env() {
  env_line NODE_ENV production
}

write_env_files() {
  local region
  for region in "${PROFILE_REGIONS[@]}"; do
    {
      runtime_env
      env_line SNAPSHOT_URI "$SNAPSHOT_URI"
      env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
      env_line PROFILE_STORE aerospike
      # functions-framework answers /favicon.ico and /robots.txt itself (empty 404) unless told not to.
      env_line IGNORED_ROUTES ''
      env_line AEROSPIKE_HOSTS "$(region_setting AEROSPIKE_HOSTS "$region")"
      env_line AEROSPIKE_NAMESPACE "$AEROSPIKE_NAMESPACE"
      if [[ -n $AEROSPIKE_USER ]]; then env_line AEROSPIKE_USER "$AEROSPIKE_USER"; fi
      env_line AEROSPIKE_MAX_CONNS_PER_NODE "$AEROSPIKE_MAX_CONNS_PER_NODE"
      if [[ $MAPPING_STORE == bigtable ]]; then
        env_line MAPPING_STORE bigtable
        bigtable_env "$BIGTABLE_APP_PROFILE"
      else
        env_line MAPPING_MAX_BYTES "$MAPPING_MAX_BYTES"
      fi
      pass_through "${PROFILE_PASS[@]}"
    } >"$(profile_env_file "$region")"
  done
  {
    runtime_env
    env_line SNAPSHOT_URI "$SNAPSHOT_URI"
    env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
    env_line MONGO_DATABASE "$MONGO_DATABASE"
    env_line MONGO_COLLECTION "$MONGO_COLLECTION"
    env_line JOB_TIMEOUT_MS "$(job_timeout_ms)"
    pass_through "${CATALOG_PASS[@]}"
  } >"$WORK_DIR/catalog.env.yaml"
  if [[ $MAPPING_STORE == bigtable ]]; then
    {
      bigquery_job_env
      # Its own app profile: low priority, so that a sync never slows the profile reads.
      bigtable_env "$BIGTABLE_SYNC_APP_PROFILE"
      env_line MAPPING_LOOKBACK_DAYS "$MAPPING_LOOKBACK_DAYS"
      if [[ -n $MAPPING_SYNC_METHOD ]]; then env_line MAPPING_SYNC_METHOD "$MAPPING_SYNC_METHOD"; fi
      env_line SYNC_TOPIC "projects/$PROJECT_ID/topics/$SHARD_TOPIC"
      env_line SYNC_DEAD_LETTER_SUBSCRIPTION "projects/$PROJECT_ID/subscriptions/$SHARD_DEAD"
      pass_through "${SYNC_PASS[@]}"
    } >"$WORK_DIR/sync.env.yaml"
    write_shard_env_file
  else
    {
      bigquery_job_env
      env_line MAPPING_MAX_BYTES "$MAPPING_MAX_BYTES"
      pass_through "${MAPPING_PASS[@]}"
    } >"$WORK_DIR/mapping.env.yaml"
  fi
}

# The profile function's --set-secrets value: each PROFILE_SECRET variable whose <NAME>_SECRET
# setting names a secret.
profile_secrets() {
  local name secret list=()
  for name in "${PROFILE_SECRET[@]}"; do
    secret="${name}_SECRET"
    if [[ -n ${!secret:-} ]]; then list+=("$name=${!secret}:latest"); fi
  done
  local IFS=,
  echo "${list[*]}"
}

# A dry run shows what each function would run with: its env file, then its secrets' sources.
# Nothing secret is in an env file; a variable of a secret kind is shown redacted all the same.
show_env() {
  local title=$1 file=$2 secrets=$3 line key hidden=" ${PROFILE_SECRET[*]} ${CATALOG_SECRET[*]} GOOGLE_OAUTH_ACCESS_TOKEN "
  echo "# env of $title, as deployed ($file):"
  while IFS= read -r line; do
    key=${line%%:*}
    if [[ $hidden == *" $key "* ]]; then line="$key: <redacted>"; fi
    echo "#   $line"
  done <"$file"
  local secret list=()
  if [[ -n $secrets ]]; then IFS=, read -r -a list <<<"$secrets"; fi
  for secret in "${list[@]}"; do
    echo "#   ${secret%%=*}: <from Secret Manager ${secret#*=}, not shown>"
  done
}

show_env_files() {
  local region
  for region in "${PROFILE_REGIONS[@]}"; do
    show_env "$PROFILE_FN in $region" "$(profile_env_file "$region")" "$(profile_secrets)"
  done
  show_env "$CATALOG_FN" "$WORK_DIR/catalog.env.yaml" "MONGO_URI=${MONGO_URI_SECRET}:latest"
  if [[ $MAPPING_STORE == bigtable ]]; then
    show_env "$SYNC_FN" "$WORK_DIR/sync.env.yaml" ''
    show_env "$SHARD_FN" "$WORK_DIR/sync-shard.env.yaml" ''
  else
    show_env "$MAPPING_FN" "$WORK_DIR/mapping.env.yaml" ''
  fi
}

# The upload: compiled code, and a package.json with production dependencies only, so that the
# build installs nothing else (the lock file still pins every version).
stage_source() {
  local source=$WORK_DIR/source
  run rm -rf "$source"
  run mkdir -p "$source"
  run npm exec --silent -- tsc -p tsconfig.build.json --outDir "$source/dist"
  run cp package-lock.json "$source/"
  run node -e '
    const fs = require("node:fs");
    const p = JSON.parse(fs.readFileSync("package.json", "utf8"));
    const keep = { name: p.name, version: p.version, private: true, type: p.type, main: p.main,
      engines: p.engines, dependencies: p.dependencies, allowScripts: p.allowScripts };
    fs.writeFileSync(process.argv[1] + "/package.json", JSON.stringify(keep, null, 2) + "\n");
  ' "$source"
}

enable_apis() {
  local apis=(cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
    artifactregistry.googleapis.com cloudscheduler.googleapis.com secretmanager.googleapis.com
    bigquery.googleapis.com storage.googleapis.com iam.googleapis.com logging.googleapis.com)
  local region bigtable_apis=(bigtable.googleapis.com bigtableadmin.googleapis.com)
  local connector='' network=''
  for region in "${PROFILE_REGIONS[@]}"; do
    connector+=$(region_setting VPC_CONNECTOR "$region")
    network+=$(region_setting VPC_NETWORK "$region")
  done
  if [[ $MONITORING == on ]]; then apis+=(monitoring.googleapis.com); fi
  if [[ -n $connector ]]; then apis+=(vpcaccess.googleapis.com); fi
  if [[ -n $network || $EDGE == lb ]]; then apis+=(compute.googleapis.com); fi
  if [[ $EDGE == lb && $EDGE_IAP == true ]]; then apis+=(iap.googleapis.com); fi
  if [[ $MAPPING_STORE == bigtable ]]; then apis+=(pubsub.googleapis.com); fi
  if [[ $MAPPING_STORE == bigtable && $BIGTABLE_PROJECT == "$PROJECT_ID" ]]; then
    apis+=("${bigtable_apis[@]}")
  fi
  run gcloud services enable "${apis[@]}" --project="$PROJECT_ID"
  if [[ $MAPPING_STORE == bigtable && $BIGTABLE_PROJECT != "$PROJECT_ID" ]]; then
    run gcloud services enable "${bigtable_apis[@]}" --project="$BIGTABLE_PROJECT"
  fi
}

# The multi-region holding region $1 (US, EU or ASIA), or nothing.
multi_region_of() {
  case ${1%%-*} in
    us) echo US ;;
    europe) echo EU ;;
    asia) echo ASIA ;;
  esac
}

# The bucket's location must serve every region that reads it: the jobs' REGION and REGIONS.
# One region: that region. Several: the multi-region of REGION, where the jobs write; regions
# on other continents still read it, across continents (and say so).
choose_bucket_location() {
  local regions=("$REGION") region outside=()
  for region in "${PROFILE_REGIONS[@]}"; do
    if [[ " ${regions[*]} " != *" $region "* ]]; then regions+=("$region"); fi
  done
  if [[ -n $BUCKET_LOCATION ]]; then
    if ((${#regions[@]} > 1)) && [[ $BUCKET_LOCATION =~ ^[A-Za-z]+-[A-Za-z]+[0-9]+$ ]]; then
      echo "deploy.sh: warning: BUCKET_LOCATION=$BUCKET_LOCATION is one region, read from ${regions[*]}: the others load snapshots across regions (slower, and billed per GiB)" >&2
    fi
    return
  fi
  if ((${#regions[@]} == 1)); then
    BUCKET_LOCATION=$REGION
    return
  fi
  BUCKET_LOCATION=$(multi_region_of "$REGION")
  [[ -n $BUCKET_LOCATION ]] ||
    die "REGION=$REGION is in no multi-region (US, EU, ASIA): set BUCKET_LOCATION to the location that should hold the snapshots for ${regions[*]}"
  for region in "${regions[@]}"; do
    if [[ $(multi_region_of "$region") != "$BUCKET_LOCATION" ]]; then outside+=("$region"); fi
  done
  echo "# snapshot bucket location: $BUCKET_LOCATION (multi-region of REGION=$REGION, where the jobs write)"
  if ((${#outside[@]})); then
    echo "deploy.sh: warning: ${outside[*]} outside $BUCKET_LOCATION: the profile functions there load snapshots across continents (slower first load, transfer billed per GiB); set BUCKET_LOCATION to choose" >&2
  fi
}

ensure_bucket() {
  # Superseded versions get a customTime from the job that replaced them; the current one has
  # none, so this rule can never delete what the service is reading.
  cat >"$WORK_DIR/lifecycle.json" <<EOF
{"rule": [{"action": {"type": "Delete"},
  "condition": {"daysSinceCustomTime": ${SNAPSHOT_RETENTION_DAYS}, "matchesPrefix": ["${SNAPSHOT_PREFIX}/"]}}]}
EOF
  if ! exists gcloud storage buckets describe "gs://$BUCKET" --project="$PROJECT_ID"; then
    run gcloud storage buckets create "gs://$BUCKET" --project="$PROJECT_ID" \
      --location="$BUCKET_LOCATION" --uniform-bucket-level-access --public-access-prevention
  elif ((${#PROFILE_REGIONS[@]} > 1)); then
    # A bucket keeps the location it was created with.
    local location
    read_to "$WORK_DIR/bucket-location" gcloud storage buckets describe "gs://$BUCKET" \
      --project="$PROJECT_ID" --format='value(location)' || true
    location=$(<"$WORK_DIR/bucket-location")
    if [[ -n $location && ${location,,} != "${BUCKET_LOCATION,,}" ]]; then
      echo "deploy.sh: warning: gs://$BUCKET is in $location, not $BUCKET_LOCATION, and cannot move: regions outside $location read snapshots across regions. A new BUCKET in $BUCKET_LOCATION fixes it." >&2
    fi
  fi
  run gcloud storage buckets update "gs://$BUCKET" --project="$PROJECT_ID" \
    --lifecycle-file="$WORK_DIR/lifecycle.json"
}

ensure_service_account() {
  local id=$1 description=$2
  if ! exists gcloud iam service-accounts describe "$(sa_email "$id")" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "${NAME_PREFIX}-$id" --project="$PROJECT_ID" \
      --display-name="$description"
    wait_for_service_account "$(sa_email "$id")"
  fi
}

# The build account with the roles a function build needs, on the project (the build's image
# repository and source bucket are Google-made, named per region). An account given in
# BUILD_SERVICE_ACCOUNT is used as it is: its owner grants its roles.
ensure_build_account() {
  [[ -z $BUILD_SERVICE_ACCOUNT ]] || return 0
  ensure_service_account build "Profile API: function builds"
  local role
  for role in "${BUILD_ROLES[@]}"; do
    run_retry gcloud projects add-iam-policy-binding "$PROJECT_ID" --condition=None \
      --member="serviceAccount:$BUILD_SA" --role="$role"
  done
}

ensure_secret() {
  local name=$1 value_var=$2
  if exists gcloud secrets describe "$name" --project="$PROJECT_ID"; then return; fi
  if [[ -z ${!value_var:-} ]]; then
    if [[ $DRY_RUN == 1 ]]; then
      echo "# secret $name must exist, or set $value_var to create it"
      return
    fi
    die "secret $name does not exist: create it, or set $value_var and deploy again
  printf %s \"\$$value_var\" | gcloud secrets create $name --data-file=- --project=$PROJECT_ID"
  fi
  local replication=(--replication-policy=automatic)
  if [[ $SECRET_REPLICATION == user-managed ]]; then
    replication=(--replication-policy=user-managed --locations="$SECRET_LOCATIONS")
  fi
  echo "+ gcloud secrets create $name --data-file=- ${replication[*]} --project=$PROJECT_ID  # value from \$$value_var on stdin"
  if [[ $DRY_RUN != 1 ]]; then
    printf %s "${!value_var}" | gcloud secrets create "$name" --data-file=- \
      "${replication[@]}" --project="$PROJECT_ID"
  fi
}

grant_secret() {
  run_retry gcloud secrets add-iam-policy-binding "$1" --project="$PROJECT_ID" \
    --member="serviceAccount:$2" --role=roles/secretmanager.secretAccessor --condition=None
}
# An IAM condition (for --condition-from-file: its expression holds commas) allowing the objects
# under folder $3 of the bucket and listing with a prefix inside it: a list request names the
# bucket, not an object, so resource.name alone cannot allow it.
write_condition() {
  local file=$1 title=$2 folder=$3 expression
  expression="resource.name.startsWith(\"projects/_/buckets/${BUCKET}/objects/${folder}\")"
  expression+=" || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${folder}\")"
  printf '{"title": "%s", "description": "%s", "expression": "%s"}\n' "$title" \
    "Written by deploy.sh: objects under gs://${BUCKET}/${folder} only" "$(json_chars "$expression")" \
    >"$file"
}

# The bucket's IAM policy (JSON) in WORK_DIR; a dry run plans a first deploy (no bindings).
read_bucket_policy() {
  local get=(gcloud storage buckets get-iam-policy "gs://$BUCKET" --project="$PROJECT_ID" --format=json)
  if [[ $DRY_RUN == 1 ]]; then
    would read "${get[@]}"
    echo '{}' >"$WORK_DIR/bucket-policy.json"
  else
    "${get[@]}" >"$WORK_DIR/bucket-policy.json"
  fi
}

# Compares MEMBER's bindings of ROLE in the bucket policy with the wanted condition file: prints
# "present" for the wanted one, "None" for an unconditional one, and for each other condition
# the path of a file holding it (a removal must name a condition exactly).
other_bindings() {
  node -e '
    const fs = require("node:fs");
    const [policyFile, member, role, wantedFile, stalePrefix] = process.argv.slice(1);
    const policy = JSON.parse(fs.readFileSync(policyFile, "utf8") || "{}");
    const wanted = JSON.parse(fs.readFileSync(wantedFile, "utf8"));
    const same = (c) => ["expression", "title", "description"].every((k) => c[k] === wanted[k]);
    let stale = 0;
    for (const binding of policy.bindings ?? []) {
      if (binding.role !== role || !(binding.members ?? []).includes(member)) continue;
      if (!binding.condition) console.log("None");
      else if (same(binding.condition)) console.log("present");
      else {
        stale += 1;
        const file = stalePrefix + "-" + stale + ".json";
        fs.writeFileSync(file, JSON.stringify(binding.condition) + "\n");
        console.log(file);
      }
    }
  ' "$@"
}

# Grants ROLE on the bucket to a service account under a condition, then removes that account's
# other bindings of ROLE (an older deployment's unconditional one, an old folder's), so that a
# re-run changes nothing and the condition is the only way in.
grant_bucket_role() {
  local sa=$1 role=$2 condition=$3 member="serviceAccount:$1" others line
  others=$(other_bindings "$WORK_DIR/bucket-policy.json" "$member" "$role" "$condition" \
    "${condition%.json}.stale")
  if ! grep -qx present <<<"$others"; then
    run_retry gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
      --member="$member" --role="$role" --condition-from-file="$condition"
  fi
  while IFS= read -r line; do
    case $line in
      '' | present) ;;
      None)
        run gcloud storage buckets remove-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
          --member="$member" --role="$role" --condition=None
        ;;
      *)
        run gcloud storage buckets remove-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
          --member="$member" --role="$role" --condition-from-file="$line"
        ;;
    esac
  done <<<"$others"
}

grant_access() {
  # The profile function only reads snapshots; each job writes (and tidies up) its own folder.
  write_condition "$WORK_DIR/profile.condition.json" "${NAME_PREFIX} snapshots, read" "${SNAPSHOT_PREFIX}/"
  write_condition "$WORK_DIR/catalog.condition.json" "${NAME_PREFIX} catalog snapshots" \
    "${SNAPSHOT_PREFIX}/catalog/"
  if [[ $MAPPING_STORE == snapshot ]]; then
    write_condition "$WORK_DIR/mapping.condition.json" "${NAME_PREFIX} mapping snapshots" \
      "${SNAPSHOT_PREFIX}/mapping/"
  fi
  read_bucket_policy
  grant_bucket_role "$PROFILE_SA" roles/storage.objectViewer "$WORK_DIR/profile.condition.json"
  grant_bucket_role "$CATALOG_SA" roles/storage.objectUser "$WORK_DIR/catalog.condition.json"
  if [[ $MAPPING_STORE == snapshot ]]; then
    grant_bucket_role "$MAPPING_SA" roles/storage.objectUser "$WORK_DIR/mapping.condition.json"
  fi
  grant_secret "$MONGO_URI_SECRET" "$CATALOG_SA"
  local name secret
  for name in "${PROFILE_SECRET[@]}"; do
    secret="${name}_SECRET"
    if [[ -n ${!secret:-} ]]; then grant_secret "${!secret}" "$PROFILE_SA"; fi
  done
  # BigQuery: run jobs in the billing project, read the one mapping table.
  local reader=$MAPPING_SA
  if [[ $MAPPING_STORE == bigtable ]]; then reader=$SYNC_SA; fi
  run_retry gcloud projects add-iam-policy-binding "$BIGQUERY_PROJECT" --condition=None \
    --member="serviceAccount:$reader" --role=roles/bigquery.jobUser
  local table_project=${MAPPING_TABLE%%.*} rest=${MAPPING_TABLE#*.}
  run_retry bq add-iam-policy-binding --project_id="$table_project" \
    --member="serviceAccount:$reader" --role=roles/bigquery.dataViewer --table=true \
    "${table_project}:${rest}"
  if [[ $MAPPING_STORE == bigtable ]]; then
    # The one table, not the instance: the sync job writes it, the profile function reads it.
    grant_table_role "$SYNC_SA" roles/bigtable.user
    grant_table_role "$PROFILE_SA" roles/bigtable.reader
  fi
}

grant_table_role() {
  run_retry gcloud bigtable instances tables add-iam-policy-binding "$BIGTABLE_TABLE" \
    --instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" \
    --member="serviceAccount:$1" --role="$2" --condition=None
}

# The `l` family's GC rule as gcloud and cbt write it.
links_max_age_days() {
  echo $((MAPPING_WINDOW_DAYS + MAPPING_LOOKBACK_DAYS))
}

validate_bigtable() {
  local name
  for name in MAPPING_WINDOW_DAYS MAPPING_LOOKBACK_DAYS BIGTABLE_NODES BIGTABLE_CPU_TARGET; do
    [[ ${!name} =~ ^[1-9][0-9]*$ ]] || die "$name must be a whole number above 0"
  done
  [[ -z $BIGTABLE_MAX_NODES || $BIGTABLE_MAX_NODES =~ ^[1-9][0-9]*$ ]] ||
    die "BIGTABLE_MAX_NODES must be a whole number above 0"
  if [[ -n $BIGTABLE_MAX_NODES ]] && ((BIGTABLE_MAX_NODES < BIGTABLE_NODES)); then
    die "BIGTABLE_MAX_NODES ($BIGTABLE_MAX_NODES) is below BIGTABLE_NODES ($BIGTABLE_NODES)"
  fi
  ((BIGTABLE_CPU_TARGET >= 10 && BIGTABLE_CPU_TARGET <= 80)) ||
    die "BIGTABLE_CPU_TARGET must be a percentage from 10 to 80"
  [[ $BIGTABLE_STORAGE_TYPE == SSD || $BIGTABLE_STORAGE_TYPE == HDD ]] ||
    die "BIGTABLE_STORAGE_TYPE must be SSD or HDD"
  # The ids Bigtable accepts (the functions check the instance and table ids the same way).
  [[ $BIGTABLE_INSTANCE =~ ^[a-z][a-z0-9-]{4,31}[a-z0-9]$ ]] ||
    die "BIGTABLE_INSTANCE must be 6 to 33 lowercase letters, digits and dashes, starting with a letter"
  [[ $BIGTABLE_CLUSTER =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
    die "BIGTABLE_CLUSTER must be 6 to 30 lowercase letters, digits and dashes, starting with a letter"
  [[ $BIGTABLE_ZONE =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]] || die "BIGTABLE_ZONE must be a zone, e.g. europe-west1-b"
  [[ $BIGTABLE_TABLE =~ ^[A-Za-z0-9_.-]{1,50}$ ]] || die "BIGTABLE_TABLE must be a Bigtable table id"
  for name in BIGTABLE_APP_PROFILE BIGTABLE_SYNC_APP_PROFILE; do
    [[ ${!name} =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,49}$ ]] || die "$name must be an app profile id"
  done
  [[ $BIGTABLE_APP_PROFILE != "$BIGTABLE_SYNC_APP_PROFILE" ]] ||
    die "BIGTABLE_APP_PROFILE and BIGTABLE_SYNC_APP_PROFILE must differ: reads and the sync have their own priorities"
  [[ $SYNC_MAX_WORKERS =~ ^[1-9][0-9]{0,3}$ ]] || die "SYNC_MAX_WORKERS must be a whole number from 1 to 9999"
  if ! [[ $SYNC_MAX_DELIVERY_ATTEMPTS =~ ^[0-9]{1,3}$ ]] || ((10#$SYNC_MAX_DELIVERY_ATTEMPTS < 5 || 10#$SYNC_MAX_DELIVERY_ATTEMPTS > 100)); then
    die "SYNC_MAX_DELIVERY_ATTEMPTS must be from 5 to 100 (Pub/Sub's dead-letter policy)"
  fi
  # export (BigQuery's EXPORT DATA writing Bigtable) is not built: README, Choosing a mapping store.
  [[ -z $MAPPING_SYNC_METHOD || $MAPPING_SYNC_METHOD == mutations ]] ||
    die "MAPPING_SYNC_METHOD must be mutations (export is not built; see README \"Choosing a mapping store\")"
}

# Bigtable mode with several REGIONS: every region reads the one cluster in BIGTABLE_ZONE. No
# replica clusters: replication is per row and unordered, so a replica could hold the version
# row before the version's cells it names, and answer from a half-written version.
warn_bigtable_regions() {
  local home=${BIGTABLE_ZONE%-*} region cost
  for region in "${PROFILE_REGIONS[@]}"; do
    [[ $region != "$home" ]] || continue
    if [[ ${region%%-*} == "${home%%-*}" ]]; then
      cost="a round trip between $region and $home, typically 5 to 70 ms within a continent"
    else
      cost="a round trip between continents, typically 80 ms or more"
    fi
    echo "deploy.sh: warning: MAPPING_STORE=bigtable: the profile function in $region reads the mapping from the cluster in $BIGTABLE_ZONE: every request pays $cost before its Aerospike read (size callers' timeouts for it; deploy.sh makes no replica clusters, see README)" >&2
  done
}

# The instance with its one cluster, the two app profiles and the table with its families, each
# created when missing and brought to the settings when not.
ensure_bigtable() {
  local bt=(--project="$BIGTABLE_PROJECT")
  if ! exists gcloud bigtable instances describe "$BIGTABLE_INSTANCE" "${bt[@]}"; then
    local cluster="id=$BIGTABLE_CLUSTER,zone=$BIGTABLE_ZONE"
    if [[ -n $BIGTABLE_MAX_NODES ]]; then
      cluster+=",autoscaling-min-nodes=$BIGTABLE_NODES,autoscaling-max-nodes=$BIGTABLE_MAX_NODES"
      cluster+=",autoscaling-cpu-target=$BIGTABLE_CPU_TARGET"
    else
      cluster+=",nodes=$BIGTABLE_NODES"
    fi
    run gcloud bigtable instances create "$BIGTABLE_INSTANCE" "${bt[@]}" \
      --display-name="${BIGTABLE_INSTANCE:0:30}" --cluster-config="$cluster" \
      --cluster-storage-type="${BIGTABLE_STORAGE_TYPE,,}"
  elif ! exists gcloud bigtable clusters describe "$BIGTABLE_CLUSTER" --instance="$BIGTABLE_INSTANCE" "${bt[@]}"; then
    die "Bigtable instance $BIGTABLE_INSTANCE exists but has no cluster $BIGTABLE_CLUSTER: set BIGTABLE_CLUSTER to one of
  gcloud bigtable clusters list --instances=$BIGTABLE_INSTANCE --project=$BIGTABLE_PROJECT"
  else
    update_cluster
  fi
  ensure_app_profile "$BIGTABLE_APP_PROFILE" PRIORITY_HIGH "${NAME_PREFIX} profile reads"
  ensure_app_profile "$BIGTABLE_SYNC_APP_PROFILE" PRIORITY_LOW "${NAME_PREFIX} mapping sync"
  local days
  days=$(links_max_age_days)
  if ! exists gcloud bigtable instances tables describe "$BIGTABLE_TABLE" \
    --instance="$BIGTABLE_INSTANCE" "${bt[@]}"; then
    run gcloud bigtable instances tables create "$BIGTABLE_TABLE" --instance="$BIGTABLE_INSTANCE" \
      "${bt[@]}" --column-families="l:maxage=${days}d||maxversions=2,m:maxversions=1"
  else
    update_families "$days"
  fi
}

# Brings the cluster's size to the settings: nodes, or autoscaling limits and target.
update_cluster() {
  local file=$WORK_DIR/bigtable-cluster.json flags
  read_to "$file" gcloud bigtable clusters describe "$BIGTABLE_CLUSTER" \
    --instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" --format=json || return 0
  # shellcheck disable=SC2016 # ${...} in JavaScript template literals, not shell expansions
  flags=$(node -e '
    const fs = require("node:fs");
    const [file, nodes, maxNodes, cpu, zone, storage] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(file, "utf8"));
    const where = String(c.location ?? "").split("/").pop();
    if (where && where !== zone) {
      console.error(`deploy.sh: warning: the cluster is in ${where}, not BIGTABLE_ZONE=${zone}; a cluster cannot move`);
    }
    if (c.defaultStorageType && c.defaultStorageType !== storage) {
      console.error(`deploy.sh: warning: the cluster stores on ${c.defaultStorageType}, not BIGTABLE_STORAGE_TYPE=${storage}; that is fixed at creation`);
    }
    const auto = c.clusterConfig?.clusterAutoscalingConfig;
    if (maxNodes) {
      const same = auto?.autoscalingLimits?.minServeNodes === Number(nodes) &&
        auto?.autoscalingLimits?.maxServeNodes === Number(maxNodes) &&
        auto?.autoscalingTargets?.cpuUtilizationPercent === Number(cpu);
      if (!same) {
        console.log(`--autoscaling-min-nodes=${nodes} --autoscaling-max-nodes=${maxNodes} --autoscaling-cpu-target=${cpu}`);
      }
    } else if (auto) {
      console.log(`--num-nodes=${nodes} --disable-autoscaling`);
    } else if (c.serveNodes !== Number(nodes)) {
      console.log(`--num-nodes=${nodes}`);
    }
  ' "$file" "$BIGTABLE_NODES" "$BIGTABLE_MAX_NODES" "$BIGTABLE_CPU_TARGET" "$BIGTABLE_ZONE" \
    "${BIGTABLE_STORAGE_TYPE}")
  if [[ -n $flags ]]; then
    local args
    read -r -a args <<<"$flags"
    run gcloud bigtable clusters update "$BIGTABLE_CLUSTER" --instance="$BIGTABLE_INSTANCE" \
      --project="$BIGTABLE_PROJECT" "${args[@]}"
  fi
}

# An app profile routing to the one cluster, at priority $2. Single-cluster routing: BigQuery's
# EXPORT DATA to Bigtable requires it (with low priority), and reads see the sync's writes at once.
ensure_app_profile() {
  local profile=$1 priority=$2 description=$3 file=$WORK_DIR/bigtable-app-profile-$1.json
  local target=(--instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT")
  if ! read_to "$file" gcloud bigtable app-profiles describe "$profile" "${target[@]}" --format=json; then
    run gcloud bigtable app-profiles create "$profile" "${target[@]}" \
      --route-to="$BIGTABLE_CLUSTER" --priority="$priority" --description="$description"
    return
  fi
  if node -e '
    const fs = require("node:fs");
    const [file, cluster, priority] = process.argv.slice(1);
    const p = JSON.parse(fs.readFileSync(file, "utf8"));
    const now = p.standardIsolation?.priority ?? p.priority ?? "PRIORITY_HIGH";
    process.exit(p.singleClusterRouting?.clusterId === cluster && now === priority ? 0 : 1);
  ' "$file" "$BIGTABLE_CLUSTER" "$priority"; then
    return
  fi
  run gcloud bigtable app-profiles update "$profile" "${target[@]}" \
    --route-to="$BIGTABLE_CLUSTER" --priority="$priority" --force
}

# Checks the table's families against the layout: prints "create FAMILY" for a missing one and
# "rule FAMILY" for one whose GC rule differs. $1: the table (describe --format=json) file.
family_changes() {
  # shellcheck disable=SC2016 # ${...} in JavaScript template literals, not shell expansions
  node -e '
    const fs = require("node:fs");
    const [file, days] = process.argv.slice(1);
    const families = JSON.parse(fs.readFileSync(file, "utf8")).columnFamilies ?? {};
    const secs = (age) => Number.parseFloat(String(age ?? "").replace(/s$/, ""));
    const versions = (n) => (r) => r?.maxNumVersions === n;
    const links = (rule) => {
      const rules = rule?.union?.rules ?? [];
      return rules.length === 2 && rules.some(versions(2)) &&
        rules.some((r) => secs(r.maxAge) === Number(days) * 86400);
    };
    const wanted = { l: links, m: versions(1) };
    for (const [name, ok] of Object.entries(wanted)) {
      if (!(name in families)) console.log(`create ${name}`);
      if (!ok(families[name]?.gcRule)) console.log(`rule ${name}`);
    }
  ' "$@"
}

# gcloud cannot change a family (only create a table with them): cbt, from the same SDK, can.
update_families() {
  local days=$1 file=$WORK_DIR/bigtable-table.json changes line
  read_to "$file" gcloud bigtable instances tables describe "$BIGTABLE_TABLE" \
    --instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" --format=json || return 0
  changes=$(family_changes "$file" "$days")
  [[ -n $changes ]] || return 0
  if [[ $DRY_RUN != 1 ]] && ! command -v cbt >/dev/null 2>&1; then
    die "the table's column families need changing (${changes//$'\n'/, }), which needs cbt:
  gcloud components install cbt   (or: apt-get install google-cloud-cli-cbt)"
  fi
  local cbt=(cbt -project="$BIGTABLE_PROJECT" -instance="$BIGTABLE_INSTANCE")
  while IFS= read -r line; do
    case $line in
      'create '*) run "${cbt[@]}" createfamily "$BIGTABLE_TABLE" "${line#create }" ;;
      'rule l') run "${cbt[@]}" setgcpolicy "$BIGTABLE_TABLE" l "maxage=${days}d" or maxversions=2 ;;
      'rule m') run "${cbt[@]}" setgcpolicy "$BIGTABLE_TABLE" m maxversions=1 ;;
    esac
  done <<<"$changes"
}

# Dies unless the table exists with both families; warns when the l rule is not the settings'.
check_bigtable_table() {
  local file=$WORK_DIR/bigtable-table.json changes
  if ! read_to "$file" gcloud bigtable instances tables describe "$BIGTABLE_TABLE" \
    --instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" --format=json; then
    [[ $DRY_RUN == 1 ]] && return 0
    die "Bigtable table $BIGTABLE_TABLE does not exist in instance $BIGTABLE_INSTANCE (project $BIGTABLE_PROJECT): deploy with MAPPING_STORE=bigtable first"
  fi
  changes=$(family_changes "$file" "$(links_max_age_days)")
  if grep -q '^create ' <<<"$changes"; then
    die "Bigtable table $BIGTABLE_TABLE lacks column families: $(grep '^create ' <<<"$changes" | cut -d' ' -f2 | paste -sd, -). Deploy again to add them"
  fi
  if grep -q '^rule ' <<<"$changes"; then
    echo "deploy.sh: warning: the GC rule of $(grep '^rule ' <<<"$changes" | cut -d' ' -f2 | paste -sd, -) is not max age $(links_max_age_days)d or 2 versions: deploy again to update it" >&2
  fi
  echo "# Bigtable table $BIGTABLE_TABLE: families l and m present"
}

# The shard workers' env file: the table (through the sync's app profile) and the BigQuery
# project whose jobs hold the versions' rows.
write_shard_env_file() {
  {
    runtime_env
    env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
    env_line BIGTABLE_PROJECT "$BIGTABLE_PROJECT"
    env_line BIGTABLE_INSTANCE "$BIGTABLE_INSTANCE"
    env_line BIGTABLE_TABLE "$BIGTABLE_TABLE"
    env_line BIGTABLE_APP_PROFILE "$BIGTABLE_SYNC_APP_PROFILE"
    env_line BIGQUERY_PROJECT "$BIGQUERY_PROJECT"
    if [[ -n $BIGQUERY_LOCATION ]]; then env_line BIGQUERY_LOCATION "$BIGQUERY_LOCATION"; fi
    # A shard stops cleanly (its progress saved) within Pub/Sub's 600 s ack deadline.
    env_line SYNC_SHARD_TIMEOUT_MS "$(((SHARD_ACK_DEADLINE_SECS - 60) * 1000))"
    pass_through "${SHARD_PASS[@]}"
  } >"$WORK_DIR/sync-shard.env.yaml"
}

# Pub/Sub's longest ack deadline for a push subscription: a shard's answer must come sooner, or
# Pub/Sub delivers it again meanwhile.
SHARD_ACK_DEADLINE_SECS=600

# The Pub/Sub service agent of the project (created here: a new project may have none yet).
pubsub_agent() {
  local number=PROJECT_NUMBER
  if read_to "$WORK_DIR/project-number" gcloud projects describe "$PROJECT_ID" \
    --format='value(projectNumber)'; then
    number=$(<"$WORK_DIR/project-number")
  fi
  echo "service-${number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# The shards' topic, the dead-letter topic and its pull subscription (messages kept 7 days: the
# sync job drains it on every run), and the sync job's right to publish and to drain.
ensure_shard_topics() {
  local p=--project="$PROJECT_ID" topic
  for topic in "$SHARD_TOPIC" "$SHARD_DEAD"; do
    if ! exists gcloud pubsub topics describe "$topic" "$p"; then
      run gcloud pubsub topics create "$topic" "$p"
    fi
  done
  if ! exists gcloud pubsub subscriptions describe "$SHARD_DEAD" "$p"; then
    run gcloud pubsub subscriptions create "$SHARD_DEAD" "$p" --topic="$SHARD_DEAD" \
      --ack-deadline=60 --message-retention-duration=7d --expiration-period=never
  fi
  run_retry gcloud pubsub topics add-iam-policy-binding "$SHARD_TOPIC" "$p" \
    --member="serviceAccount:$SYNC_SA" --role=roles/pubsub.publisher
  run_retry gcloud pubsub subscriptions add-iam-policy-binding "$SHARD_DEAD" "$p" \
    --member="serviceAccount:$SYNC_SA" --role=roles/pubsub.subscriber
}

# The shard worker function and the push subscription that feeds it: SYNC_MAX_WORKERS instances
# of concurrency 1 bound the shards written at once (Pub/Sub push has no concurrency setting;
# past max instances Cloud Run answers 429 and Pub/Sub delivers again with back-off), retries
# from 10 s to 600 s, SYNC_MAX_DELIVERY_ATTEMPTS deliveries, then the dead-letter topic. Pushes
# carry an OIDC token of the push account, the one allowed to invoke the worker.
deploy_sync_workers() {
  local p=--project="$PROJECT_ID" agent url
  ensure_service_account push "Profile API: Pub/Sub pushes to the shard workers"
  deploy_function "$REGION" "$SHARD_FN" syncMappingShard "$SYNC_SA" "$WORK_DIR/sync-shard.env.yaml" \
    --memory="$JOB_MEMORY" --cpu="$JOB_CPU" --timeout="${SHARD_ACK_DEADLINE_SECS}s" \
    --min-instances=0 --max-instances="$SYNC_MAX_WORKERS" --concurrency=1 --no-allow-unauthenticated
  run_retry gcloud functions add-invoker-policy-binding "$SHARD_FN" "$p" --region="$REGION" \
    --member="serviceAccount:$PUSH_SA"
  run gcloud beta services identity create --service=pubsub.googleapis.com "$p"
  agent=$(pubsub_agent)
  # Pub/Sub signs the pushes' tokens as the push account, and dead-letters as its own agent.
  run_retry gcloud iam service-accounts add-iam-policy-binding "$PUSH_SA" "$p" \
    --member="serviceAccount:$agent" --role=roles/iam.serviceAccountTokenCreator
  run_retry gcloud pubsub topics add-iam-policy-binding "$SHARD_DEAD" "$p" \
    --member="serviceAccount:$agent" --role=roles/pubsub.publisher
  url=$(function_url "$SHARD_FN")
  local push=("$p" --push-endpoint="$url/" --push-auth-service-account="$PUSH_SA"
    --push-auth-token-audience="$url" --ack-deadline="$SHARD_ACK_DEADLINE_SECS"
    --min-retry-delay=10s --max-retry-delay=600s --dead-letter-topic="$SHARD_DEAD"
    --max-delivery-attempts="$SYNC_MAX_DELIVERY_ATTEMPTS" --message-retention-duration=7d
    --expiration-period=never)
  if exists gcloud pubsub subscriptions describe "$SHARD_PUSH" "$p"; then
    run_retry gcloud pubsub subscriptions update "$SHARD_PUSH" "${push[@]}"
  else
    run_retry gcloud pubsub subscriptions create "$SHARD_PUSH" --topic="$SHARD_TOPIC" "${push[@]}"
  fi
  run_retry gcloud pubsub subscriptions add-iam-policy-binding "$SHARD_PUSH" "$p" \
    --member="serviceAccount:$agent" --role=roles/pubsub.subscriber
}

# Dies unless the shard dispatch is in place: both topics, the push subscription to the worker
# with its dead-letter policy, the dead-letter subscription, the worker function.
check_sync_workers() {
  local p=--project="$PROJECT_ID" file=$WORK_DIR/shard-push.json topic
  [[ $DRY_RUN != 1 ]] || return 0
  for topic in "$SHARD_TOPIC" "$SHARD_DEAD"; do
    exists gcloud pubsub topics describe "$topic" "$p" ||
      die "Pub/Sub topic $topic does not exist: deploy with MAPPING_STORE=bigtable first"
  done
  exists gcloud pubsub subscriptions describe "$SHARD_DEAD" "$p" ||
    die "Pub/Sub subscription $SHARD_DEAD (the dead letters the sync job drains) does not exist: deploy again"
  exists gcloud functions describe "$SHARD_FN" --gen2 "$p" --region="$REGION" ||
    die "the shard worker $SHARD_FN is not deployed: deploy again"
  read_to "$file" gcloud pubsub subscriptions describe "$SHARD_PUSH" "$p" --format=json ||
    die "Pub/Sub subscription $SHARD_PUSH (shards to $SHARD_FN) does not exist: deploy again"
  # shellcheck disable=SC2016 # ${...} in JavaScript template literals, not shell expansions
  node -e '
    const fs = require("node:fs");
    const [file, fn, dead] = process.argv.slice(1);
    const s = JSON.parse(fs.readFileSync(file, "utf8") || "{}");
    const problems = [];
    if (!String(s.pushConfig?.pushEndpoint ?? "").includes(fn)) problems.push(`it pushes to ${s.pushConfig?.pushEndpoint ?? "nowhere"}, not ${fn}`);
    if (!String(s.deadLetterPolicy?.deadLetterTopic ?? "").endsWith(`/topics/${dead}`)) problems.push(`it has no dead-letter topic ${dead}`);
    if (!s.pushConfig?.oidcToken?.serviceAccountEmail) problems.push("its pushes carry no OIDC token");
    if (problems.length > 0) { console.error(problems.join("; ")); process.exit(1); }
  ' "$file" "$SHARD_FN" "$SHARD_DEAD" ||
    die "Pub/Sub subscription $SHARD_PUSH is not as deploy.sh makes it (above): deploy again"
  echo "# shard dispatch: $SHARD_TOPIC -> $SHARD_PUSH -> $SHARD_FN, dead letters to $SHARD_DEAD"
}

# The push subscription, the dead-letter subscription and both topics, whatever MAPPING_STORE is
# now (a switch may have left them); the worker function goes with the other functions.
teardown_sync_workers() {
  local p=--project="$PROJECT_ID" name
  for name in "$SHARD_PUSH" "$SHARD_DEAD"; do
    if exists gcloud pubsub subscriptions describe "$name" "$p"; then
      run gcloud pubsub subscriptions delete "$name" "$p" --quiet
    fi
  done
  for name in "$SHARD_TOPIC" "$SHARD_DEAD"; do
    if exists gcloud pubsub topics describe "$name" "$p"; then
      run gcloud pubsub topics delete "$name" "$p" --quiet
    fi
  done
}

deploy_function() {
  local region=$1 name=$2 entry=$3 sa=$4 env_file=$5
  shift 5
  run_retry gcloud functions deploy "$name" --gen2 --project="$PROJECT_ID" --region="$region" \
    --runtime="$RUNTIME" --source="$WORK_DIR/source" --entry-point="$entry" --trigger-http \
    --run-service-account="$sa" --build-service-account="projects/$PROJECT_ID/serviceAccounts/$BUILD_SA" \
    --env-vars-file="$env_file" "$@"
}

# The mapping job of this store: the snapshot job, or the Bigtable sync job.
mapping_job_fn() {
  if [[ $MAPPING_STORE == bigtable ]]; then echo "$SYNC_FN"; else echo "$MAPPING_FN"; fi
}

deploy_functions() {
  local region connector network subnet ingress=$PROFILE_INGRESS auth=--no-allow-unauthenticated
  if [[ $EDGE == lb ]]; then
    # Only the load balancer reaches the function. It presents no Google identity of the
    # caller: behind IAP, IAP's service agent is the invoker; with API keys, anyone who passes
    # the edge may invoke, and the function checks the key.
    ingress=internal-and-gclb
    if [[ $EDGE_IAP != true ]]; then auth=--allow-unauthenticated; fi
  elif [[ $PROFILE_ALLOW_UNAUTHENTICATED == true ]]; then
    auth=--allow-unauthenticated
  fi
  # Domain-restricted sharing (check_org_policies): public without an allUsers binding.
  local invoker_check=()
  if [[ $auth == --allow-unauthenticated && $INVOKER_IAM_CHECK == false ]]; then
    auth=--no-allow-unauthenticated
    invoker_check=(--no-invoker-iam-check)
  fi
  local secrets
  secrets=$(profile_secrets)
  for region in "${PROFILE_REGIONS[@]}"; do
    local profile_flags=(--memory="$PROFILE_MEMORY" --cpu="$PROFILE_CPU"
      --min-instances="$PROFILE_MIN_INSTANCES" --max-instances="$PROFILE_MAX_INSTANCES"
      --concurrency="$PROFILE_CONCURRENCY" --timeout="$PROFILE_TIMEOUT"
      --ingress-settings="$ingress")
    connector=$(region_setting VPC_CONNECTOR "$region")
    network=$(region_setting VPC_NETWORK "$region")
    subnet=$(region_setting VPC_SUBNET "$region")
    # Flags for the function's Cloud Run service, set after the deploy (one new revision).
    local service_flags=()
    if [[ -n $connector ]]; then
      profile_flags+=(--vpc-connector="$connector" --egress-settings="$VPC_EGRESS")
    elif [[ -n $network ]]; then
      # gcloud's functions deploy takes Direct VPC egress only from 545.0.0 on: the function's
      # Cloud Run service takes it on every version (README "Reaching Aerospike").
      profile_flags+=(--clear-vpc-connector)
      service_flags+=(--network="$network")
      if [[ -n $subnet ]]; then service_flags+=(--subnet="$subnet"); fi
      service_flags+=(--vpc-egress="$(run_egress)")
    fi
    if [[ -n $secrets ]]; then profile_flags+=(--set-secrets="$secrets"); fi
    profile_flags+=("$auth")
    deploy_function "$region" "$PROFILE_FN" profile "$PROFILE_SA" "$(profile_env_file "$region")" \
      "${profile_flags[@]}"
    # Set on the function's Cloud Run service, which later function deploys leave as it is.
    if [[ $PROFILE_CPU_ALWAYS_ALLOCATED == true ]]; then service_flags=(--no-cpu-throttling "${service_flags[@]}"); fi
    service_flags+=("${invoker_check[@]}")
    if ((${#service_flags[@]})); then
      run gcloud run services update "$PROFILE_FN" --project="$PROJECT_ID" --region="$region" \
        "${service_flags[@]}"
    fi
  done

  # One run at a time, long enough for the job, never public.
  local job_flags=(--memory="$JOB_MEMORY" --cpu="$JOB_CPU" --timeout="$JOB_TIMEOUT"
    --min-instances=0 --max-instances=1 --concurrency=1 --no-allow-unauthenticated)
  deploy_function "$REGION" "$CATALOG_FN" snapshotCatalog "$CATALOG_SA" "$WORK_DIR/catalog.env.yaml" \
    "${job_flags[@]}" --set-secrets="MONGO_URI=${MONGO_URI_SECRET}:latest"
  if [[ $MAPPING_STORE == bigtable ]]; then
    deploy_function "$REGION" "$SYNC_FN" syncMapping "$SYNC_SA" "$WORK_DIR/sync.env.yaml" \
      "${job_flags[@]}"
  else
    deploy_function "$REGION" "$MAPPING_FN" snapshotMapping "$MAPPING_SA" "$WORK_DIR/mapping.env.yaml" \
      "${job_flags[@]}"
  fi

  local fn
  for fn in "$CATALOG_FN" "$(mapping_job_fn)"; do
    run_retry gcloud functions add-invoker-policy-binding "$fn" --project="$PROJECT_ID" \
      --region="$REGION" --member="serviceAccount:$SCHEDULER_SA"
  done
  local member members=()
  if [[ -n $PROFILE_INVOKERS ]]; then IFS=, read -r -a members <<<"$PROFILE_INVOKERS"; fi
  if [[ $EDGE == lb && $EDGE_IAP == true ]]; then members+=("serviceAccount:$(iap_service_agent)"); fi
  for region in "${PROFILE_REGIONS[@]}"; do
    for member in "${members[@]}"; do
      run_retry gcloud functions add-invoker-policy-binding "$PROFILE_FN" --project="$PROJECT_ID" \
        --region="$region" --member="$member"
    done
  done
}

# VPC_EGRESS as Cloud Run's --vpc-egress takes it.
run_egress() {
  if [[ $VPC_EGRESS == all ]]; then echo all-traffic; else echo private-ranges-only; fi
}

function_url() {
  local region=${2:-$REGION}
  if [[ $DRY_RUN == 1 ]]; then
    echo "https://$1-PROJECT_HASH.${region}.run.app"
    return
  fi
  gcloud functions describe "$1" --gen2 --project="$PROJECT_ID" --region="$region" \
    --format='value(serviceConfig.uri)'
}

ensure_scheduler_job() {
  local job=$1 fn=$2 schedule=$3 url
  url=$(function_url "$fn")
  local common=(--project="$PROJECT_ID" --location="$REGION" --schedule="$schedule"
    --time-zone="$SCHEDULER_TIME_ZONE" --uri="$url/" --http-method=POST --message-body='{}'
    --oidc-service-account-email="$SCHEDULER_SA" --oidc-token-audience="$url"
    --attempt-deadline="$JOB_TIMEOUT" --max-retry-attempts=3 --min-backoff=60s
    --max-backoff=600s --max-doublings=3)
  if exists gcloud scheduler jobs describe "$job" --project="$PROJECT_ID" --location="$REGION"; then
    run_retry gcloud scheduler jobs update http "$job" "${common[@]}" \
      --update-headers=Content-Type=application/json
  else
    run_retry gcloud scheduler jobs create http "$job" "${common[@]}" \
      --headers=Content-Type=application/json
  fi
}

# The other store's mapping job keeps running on its schedule after a switch of MAPPING_STORE;
# say so rather than delete it before the new store serves.
note_unused_mapping_job() {
  local fn=$SYNC_FN other=bigtable commands=()
  if [[ $MAPPING_STORE == bigtable ]]; then
    fn=$MAPPING_FN
    other=snapshot
  fi
  # The scheduler job has its function's name.
  if exists gcloud scheduler jobs describe "$fn" --project="$PROJECT_ID" --location="$REGION"; then
    commands+=("gcloud scheduler jobs delete $fn --project=$PROJECT_ID --location=$REGION --quiet")
  fi
  if exists gcloud functions describe "$fn" --gen2 --project="$PROJECT_ID" --region="$REGION"; then
    commands+=("gcloud functions delete $fn --gen2 --project=$PROJECT_ID --region=$REGION --quiet")
  fi
  ((${#commands[@]})) || return 0
  {
    echo "deploy.sh: note: $fn is left from a MAPPING_STORE=$other deploy; MAPPING_STORE=$MAPPING_STORE does not use it, and it still runs on its schedule. Once the new store serves, delete it:"
    printf '  %s\n' "${commands[@]}"
  } >&2
}

require_mapping_table() {
  [[ -n ${MAPPING_TABLE:-} ]] || die "MAPPING_TABLE is required (see --help)"
  [[ $MAPPING_TABLE =~ ^[a-z][a-z0-9-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$ ]] ||
    die "MAPPING_TABLE must be project.dataset.table"
}

# Whether $1 (an IPv4 address) is in a private range, which only VPC egress reaches: RFC 1918
# and RFC 6598 (shared address space), the ranges private-ranges-only egress sends to the VPC.
private_ipv4() {
  [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || return 1
  local a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
  ((a == 10 || (a == 172 && b >= 16 && b <= 31) || (a == 192 && b == 168) ||
    (a == 100 && b >= 64 && b <= 127)))
}

# Checks region $1's VPC egress settings against its Aerospike seeds, before anything is created:
# a private seed without egress times out on every lookup, and a public one is refused unless
# AEROSPIKE_PUBLIC=true says it is meant.
check_egress() {
  local region=$1 connector network subnet seeds seed host private=() public=()
  connector=$(region_setting VPC_CONNECTOR "$region")
  network=$(region_setting VPC_NETWORK "$region")
  subnet=$(region_setting VPC_SUBNET "$region")
  seeds=$(region_setting AEROSPIKE_HOSTS "$region")
  if [[ -n $connector && -n $network ]]; then
    die "$region: VPC_CONNECTOR ($connector) and VPC_NETWORK ($network) are exclusive: Cloud Run uses a connector or Direct VPC egress, not both"
  fi
  if [[ -n $subnet && -z $network ]]; then die "$region: VPC_SUBNET needs VPC_NETWORK (Direct VPC egress)"; fi
  IFS=, read -r -a seeds <<<"$seeds"
  for seed in "${seeds[@]}"; do
    host=${seed%%:*}
    if private_ipv4 "$host"; then private+=("$host"); else public+=("$host"); fi
  done
  if [[ -z $connector && -z $network ]]; then
    if ((${#private[@]})); then
      die "AEROSPIKE_HOSTS: ${private[*]} is in a private range, which the profile function in $region cannot reach without VPC egress (every lookup would time out): set VPC_CONNECTOR (Serverless VPC Access) or VPC_NETWORK and VPC_SUBNET (Direct VPC egress), per region with the _<REGION> suffix"
    fi
    if [[ $AEROSPIKE_PUBLIC != true ]]; then
      die "AEROSPIKE_HOSTS: the profile function in $region has no VPC egress and would reach ${public[*]} over the public internet: set VPC_CONNECTOR or VPC_NETWORK, or AEROSPIKE_PUBLIC=true if the cluster is meant to be reached that way (the network is then its only boundary: see README \"Aerospike\")"
    fi
    echo "deploy.sh: note: AEROSPIKE_PUBLIC=true: the profile function in $region reaches ${public[*]} over the public internet" >&2
  elif [[ $VPC_EGRESS == private-ranges-only ]]; then
    local address=()
    for host in "${public[@]}"; do
      if [[ $host =~ ^[0-9.]+$ ]]; then address+=("$host"); fi
    done
    if ((${#address[@]})); then
      echo "deploy.sh: warning: ${address[*]} is a public address: with VPC_EGRESS=private-ranges-only the profile function in $region reaches it over the internet, not the VPC (VPC_EGRESS=all sends everything through the VPC)" >&2
    fi
  fi
}

# The effective organisation policy $1 on the project, as one word: for a list constraint
# "restricted" (some values only, or none) or "open", for a boolean one "enforced" or "open";
# "unknown" when it cannot be read. A dry run reads nothing and plans for "open".
org_policy() {
  local file=$WORK_DIR/org-policy-$1.json
  if ! read_to "$file" gcloud resource-manager org-policies describe "$1" --project="$PROJECT_ID" \
    --effective --format=json; then
    if [[ $DRY_RUN == 1 ]]; then echo open; else echo unknown; fi
    return
  fi
  node -e '
    const fs = require("node:fs");
    const p = JSON.parse(fs.readFileSync(process.argv[1], "utf8") || "{}");
    const list = p.listPolicy;
    if (p.booleanPolicy?.enforced === true) console.log("enforced");
    else if (list && (list.allValues === "DENY" || (list.allowedValues ?? []).length > 0 ||
      (list.deniedValues ?? []).length > 0)) console.log("restricted");
    else console.log("open");
  ' "$file"
}

# Public grants fail in organisations with domain-restricted sharing (no allUsers member) or
# enforced public access prevention (no public bucket), and would stop a run halfway through the
# load balancer: read the effective policies first and fall back, saying so.
check_org_policies() {
  INVOKER_IAM_CHECK=true
  local public_invoker=false public_bucket=false
  if [[ $EDGE == lb && $EDGE_IAP != true ]] ||
    [[ $EDGE != lb && $PROFILE_ALLOW_UNAUTHENTICATED == true ]]; then public_invoker=true; fi
  if [[ $EDGE == lb && $EDGE_JSON_ERRORS == true ]]; then public_bucket=true; fi
  [[ $public_invoker == true || $public_bucket == true ]] || return 0
  local drs pap=open
  drs=$(org_policy iam.allowedPolicyMemberDomains)
  if [[ $public_bucket == true ]]; then pap=$(org_policy storage.publicAccessPrevention); fi
  if [[ $drs == unknown || $pap == unknown ]]; then
    echo "deploy.sh: warning: could not read the project's effective organisation policies (iam.allowedPolicyMemberDomains, storage.publicAccessPrevention; needs roles/orgpolicy.policyViewer): assuming none; a public grant below fails if one applies" >&2
  fi
  if [[ $public_bucket == true && ($drs == restricted || $pap == enforced) ]]; then
    EDGE_JSON_ERRORS=false
    echo "deploy.sh: note: the organisation policy $([[ $pap == enforced ]] && echo storage.publicAccessPrevention || echo iam.allowedPolicyMemberDomains) forbids the public bucket of the edge's JSON error bodies: deploying with EDGE_JSON_ERRORS=false (the edge's 403 and 429 are Google's HTML pages)" >&2
  fi
  if [[ $public_invoker == true && $drs == restricted ]]; then
    # Google's way to a public service under domain-restricted sharing: no allUsers binding,
    # the service skips the invoker check instead.
    INVOKER_IAM_CHECK=false
    echo "deploy.sh: note: domain-restricted sharing (iam.allowedPolicyMemberDomains) forbids granting allUsers the invoker role: the profile function is deployed without it and its Cloud Run service skips the invoker IAM check (--no-invoker-iam-check); callers still need an API key" >&2
    if [[ -z $API_KEYS_SECRET ]]; then
      die "PROFILE_ALLOW_UNAUTHENTICATED=true under domain-restricted sharing would open the profile function to anyone without an API key: set API_KEYS_SECRET, or grant callers with PROFILE_INVOKERS instead"
    fi
  fi
}

# Cloud Run's and Cloud Scheduler's own rules for the functions' settings, checked before any
# call: a value they reject would otherwise fail halfway, after the first functions deployed.
validate_run_settings() {
  local secs=${JOB_TIMEOUT%s}
  ((secs >= 61 && secs <= 1800)) ||
    die "JOB_TIMEOUT=$JOB_TIMEOUT: must be 61s to 1800s: it is also the scheduler job's attempt deadline, which Cloud Scheduler takes from 15 s to 30 min for HTTP targets, and the job stops itself 60 s before it"
  if [[ ! $PROFILE_TIMEOUT =~ ^[0-9]+s$ ]] || ((${PROFILE_TIMEOUT%s} < 1 || ${PROFILE_TIMEOUT%s} > 3600)); then
    die "PROFILE_TIMEOUT must be 1s to 3600s (Cloud Run's limit for HTTP functions)"
  fi
  local name
  for name in PROFILE_MIN_INSTANCES PROFILE_MAX_INSTANCES PROFILE_CONCURRENCY; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number"
  done
  ((PROFILE_CONCURRENCY >= 1 && PROFILE_CONCURRENCY <= 1000)) ||
    die "PROFILE_CONCURRENCY must be 1 to 1000 (Cloud Run's range)"
  ((PROFILE_MAX_INSTANCES >= 1 && PROFILE_MIN_INSTANCES <= PROFILE_MAX_INSTANCES)) ||
    die "PROFILE_MIN_INSTANCES ($PROFILE_MIN_INSTANCES) must not exceed PROFILE_MAX_INSTANCES ($PROFILE_MAX_INSTANCES), which must be at least 1"
  if [[ $PROFILE_CPU =~ ^0?\. ]]; then
    ((PROFILE_CONCURRENCY == 1)) ||
      die "PROFILE_CPU=$PROFILE_CPU with PROFILE_CONCURRENCY=$PROFILE_CONCURRENCY: Cloud Run takes less than 1 CPU only with concurrency 1 (set PROFILE_CPU=1 or more)"
    [[ $PROFILE_CPU_ALWAYS_ALLOCATED != true ]] ||
      die "PROFILE_CPU=$PROFILE_CPU with PROFILE_CPU_ALWAYS_ALLOCATED=true: Cloud Run takes less than 1 CPU only with CPU allocated during requests (set PROFILE_CPU=1 or more)"
  fi
  check_cpu PROFILE_CPU "$PROFILE_CPU" "$PROFILE_MEMORY"
  check_cpu JOB_CPU "$JOB_CPU" "$JOB_MEMORY"
}

# Checks a CPU setting $1 (value $2) as Cloud Run takes it for memory $3: a fraction from 0.08
# below 1 (with at most 512 MiB below 0.5 CPU, 1 GiB below 1), or 1, 2, 4, 6 or 8 CPUs, at least
# the minimum for that memory (its "memory limits" page).
check_cpu() {
  local name=$1 cpu=$2 memory need
  memory=$(memory_bytes "$3")
  if [[ $cpu =~ ^0?\.([0-9]+)$ ]]; then
    local thousandths=$((10#$(printf '%-3.3s' "${BASH_REMATCH[1]}" | tr ' ' 0)))
    ((thousandths >= 80)) || die "$name=$cpu: Cloud Run's smallest CPU is 0.08"
    local most=$((1024 * MIB))
    if ((thousandths < 500)); then most=$((512 * MIB)); fi
    ((memory <= most)) ||
      die "$name=$cpu with $3 of memory: Cloud Run takes at most $((most / MIB)) MiB below $([[ $most == $((512 * MIB)) ]] && echo 0.5 || echo 1) CPU"
    return 0
  fi
  [[ $cpu =~ ^(1|2|4|6|8)$ ]] ||
    die "$name=$cpu: Cloud Run takes a fraction from 0.08 below 1, or 1, 2, 4, 6 or 8 CPUs"
  need=$(min_cpu "$memory")
  ((cpu >= need)) || die "$name=$cpu with $3 of memory: Cloud Run needs at least $need CPUs for that much memory"
}

# Settings of the front door, checked before anything is created.
validate_edge() {
  if [[ $EDGE != lb ]]; then
    if ((${#PROFILE_REGIONS[@]} > 1)) || [[ ${PROFILE_REGIONS[0]} != "$REGION" ]]; then
      die "REGIONS needs EDGE=lb: one load balancer address in front of the regions (see --help)"
    fi
    return 0
  fi
  [[ -n $DOMAIN ]] || die "DOMAIN is required with EDGE=lb (see --help)"
  [[ $DOMAIN =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$ ]] ||
    die "DOMAIN must be a lowercase host name, e.g. api.example.com"
  [[ $EDGE_IAP == true || $EDGE_IAP == false ]] || die "EDGE_IAP must be true or false"
  if [[ -n $IAP_OAUTH_CLIENT_ID$IAP_OAUTH_CLIENT_SECRET_SECRET$IAP_PROGRAMMATIC_CLIENTS && $EDGE_IAP != true ]]; then
    die "IAP_OAUTH_CLIENT_ID, IAP_OAUTH_CLIENT_SECRET_SECRET and IAP_PROGRAMMATIC_CLIENTS need EDGE_IAP=true"
  fi
  if [[ -n $IAP_OAUTH_CLIENT_ID && -z $IAP_OAUTH_CLIENT_SECRET_SECRET ]] ||
    [[ -z $IAP_OAUTH_CLIENT_ID && -n $IAP_OAUTH_CLIENT_SECRET_SECRET ]]; then
    die "IAP_OAUTH_CLIENT_ID and IAP_OAUTH_CLIENT_SECRET_SECRET go together: the custom OAuth client's id and the Secret Manager secret holding its secret"
  fi
  local client_id='[0-9]+-[a-z0-9]+\.apps\.googleusercontent\.com'
  [[ -z $IAP_OAUTH_CLIENT_ID || $IAP_OAUTH_CLIENT_ID =~ ^${client_id}$ ]] ||
    die "IAP_OAUTH_CLIENT_ID must be an OAuth client id (NNN-xxx.apps.googleusercontent.com)"
  IAP_PROGRAMMATIC_CLIENTS=${IAP_PROGRAMMATIC_CLIENTS//[[:space:]]/}
  [[ -z $IAP_PROGRAMMATIC_CLIENTS || $IAP_PROGRAMMATIC_CLIENTS =~ ^${client_id}(,${client_id})*$ ]] ||
    die "IAP_PROGRAMMATIC_CLIENTS must be comma-separated OAuth client ids (NNN-xxx.apps.googleusercontent.com)"
  if [[ -z $API_KEYS_SECRET && $EDGE_IAP != true ]]; then
    die "EDGE=lb with neither API_KEYS_SECRET nor EDGE_IAP=true would leave the API open to anyone: behind the load balancer the function no longer receives the callers' Google identity tokens. Set API_KEYS_SECRET (callers send x-api-key) or EDGE_IAP=true (Identity-Aware Proxy; grant callers with IAP_MEMBERS)."
  fi
  if [[ -n $PROFILE_INGRESS_SET && $PROFILE_INGRESS_SET != internal-and-gclb ]]; then
    die "PROFILE_INGRESS=$PROFILE_INGRESS_SET contradicts EDGE=lb, which lets only the load balancer in (internal-and-gclb)"
  fi
  if [[ ! $RATE_LIMIT_PER_MIN =~ ^[1-9][0-9]{0,6}$ ]] || ((RATE_LIMIT_PER_MIN > 1000000)); then
    die "RATE_LIMIT_PER_MIN must be a whole number from 1 to 1000000 (Cloud Armor's range)"
  fi
  [[ $RATE_LIMIT_KEY == ip || $RATE_LIMIT_KEY == api-key ]] || die "RATE_LIMIT_KEY must be ip or api-key"
  RATE_LIMIT_API_KEY_PREFIXES=${RATE_LIMIT_API_KEY_PREFIXES//[[:space:]]/}
  if [[ $RATE_LIMIT_KEY == api-key ]]; then
    [[ -n $RATE_LIMIT_API_KEY_PREFIXES ]] ||
      die "RATE_LIMIT_KEY=api-key needs RATE_LIMIT_API_KEY_PREFIXES (the start of each key you issued, comma-separated): a limit per x-api-key value alone lets a client sending a new random key each time escape every limit, so only known keys get a count of their own; the rest are counted per address"
    local prefixes prefix
    IFS=, read -r -a prefixes <<<"$RATE_LIMIT_API_KEY_PREFIXES"
    ((${#prefixes[@]} <= MAX_KEY_PREFIXES)) ||
      die "RATE_LIMIT_API_KEY_PREFIXES holds ${#prefixes[@]} prefixes; deploy.sh makes at most $MAX_KEY_PREFIXES key rules"
    for prefix in "${prefixes[@]}"; do
      [[ $prefix =~ ^[A-Za-z0-9._-]{4,32}$ ]] ||
        die "RATE_LIMIT_API_KEY_PREFIXES: '$prefix' must be 4 to 32 letters, digits, '.', '_' or '-'"
    done
  elif [[ -n $RATE_LIMIT_API_KEY_PREFIXES ]]; then
    die "RATE_LIMIT_API_KEY_PREFIXES needs RATE_LIMIT_KEY=api-key"
  fi
  [[ $EDGE_JSON_ERRORS == true || $EDGE_JSON_ERRORS == false ]] || die "EDGE_JSON_ERRORS must be true or false"
  ALLOWED_CIDRS=${ALLOWED_CIDRS//[[:space:]]/}
  if [[ -n $ALLOWED_CIDRS ]]; then
    local cidrs cidr
    IFS=, read -r -a cidrs <<<"$ALLOWED_CIDRS"
    ((${#cidrs[@]} <= MAX_ALLOWED_CIDRS)) ||
      die "ALLOWED_CIDRS holds ${#cidrs[@]} ranges; Cloud Armor takes at most $MAX_ALLOWED_CIDRS in one rule"
    for cidr in "${cidrs[@]}"; do
      [[ $cidr =~ ^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$ ]] || die "ALLOWED_CIDRS: '$cidr' is not an IP range"
    done
  fi
}

# The Google-managed certificate of DOMAIN. Certificates cannot change their domains, so the
# name follows the domain and a new DOMAIN gets a new certificate.
edge_certificate() {
  local hash
  hash=$(printf %s "$DOMAIN" | sha256sum)
  echo "${NAME_PREFIX}-cert-${hash:0:8}"
}

# The load balancer's address, or a placeholder in a dry run.
edge_ip() {
  if read_to "$WORK_DIR/edge-ip" gcloud compute addresses describe "$EDGE_ADDRESS" --global \
    --project="$PROJECT_ID" --format='value(address)' >/dev/null; then
    cat "$WORK_DIR/edge-ip"
  else
    echo "<address of $EDGE_ADDRESS>"
  fi
}

# IAP calls the function as its service agent (created here: a new project has none yet).
resolve_iap_agent() {
  run gcloud beta services identity create --service=iap.googleapis.com --project="$PROJECT_ID"
  local number=PROJECT_NUMBER
  if read_to "$WORK_DIR/project-number" gcloud projects describe "$PROJECT_ID" \
    --format='value(projectNumber)'; then
    number=$(<"$WORK_DIR/project-number")
  fi
  IAP_AGENT="service-${number}@gcp-sa-iap.iam.gserviceaccount.com"
}

iap_service_agent() {
  echo "${IAP_AGENT:?resolve_iap_agent first}"
}

# Our error body for the edge's own refusals, served by the load balancer from a public bucket
# that holds nothing else.
ensure_error_pages() {
  local dir=$WORK_DIR/edge-errors
  mkdir -p "$dir"
  echo '{"error":{"code":"forbidden","message":"this client may not call the API"}}' >"$dir/403.json"
  # Cloud Run's own 429 (no instance free) gets this body too: say nothing about whose fault.
  echo '{"error":{"code":"too_many_requests","message":"too many requests; retry later"}}' >"$dir/429.json"
  if ! exists gcloud storage buckets describe "gs://$EDGE_ERROR_BUCKET" --project="$PROJECT_ID"; then
    run gcloud storage buckets create "gs://$EDGE_ERROR_BUCKET" --project="$PROJECT_ID" \
      --location="$BUCKET_LOCATION" --uniform-bucket-level-access
  fi
  run gcloud storage buckets add-iam-policy-binding "gs://$EDGE_ERROR_BUCKET" --project="$PROJECT_ID" \
    --member=allUsers --role=roles/storage.objectViewer
  run gcloud storage cp "$dir/403.json" "$dir/429.json" "gs://$EDGE_ERROR_BUCKET/edge-errors/" \
    --project="$PROJECT_ID" --content-type=application/json --cache-control=no-store
  if ! exists gcloud compute backend-buckets describe "$EDGE_ERROR_BACKEND" --project="$PROJECT_ID"; then
    run gcloud compute backend-buckets create "$EDGE_ERROR_BACKEND" --project="$PROJECT_ID" \
      --gcs-bucket-name="$EDGE_ERROR_BUCKET"
  fi
}

# Cloud Armor: the throttle per source address (limited to ALLOWED_CIDRS when set), with
# RATE_LIMIT_KEY=api-key one throttle per known key before it, and a default rule that allows,
# or denies what the allow list leaves out. A throttle that lets a request through ends the
# evaluation, so limits do not stack: a request with a known key counts against that key only,
# and every other request (no key, or a key nobody issued) against its address, never against
# a count of its own making (a random key per request would be one).
ensure_security_policy() {
  local target=(--security-policy="$EDGE_POLICY" --project="$PROJECT_ID")
  if ! exists gcloud compute security-policies describe "$EDGE_POLICY" --project="$PROJECT_ID"; then
    run gcloud compute security-policies create "$EDGE_POLICY" --project="$PROJECT_ID" \
      --description="${NAME_PREFIX} front door: rate limit and allow list"
  fi
  local sources=${ALLOWED_CIDRS:-*} fallback=allow
  if [[ -n $ALLOWED_CIDRS ]]; then fallback=deny-403; fi
  local limit=(--action=throttle --rate-limit-threshold-count="$RATE_LIMIT_PER_MIN"
    --rate-limit-threshold-interval-sec=60 --conform-action=allow --exceed-action=deny-429)
  local priority=$KEY_RULE_FIRST prefix expression prefixes=() within=''
  if [[ $RATE_LIMIT_KEY == api-key ]]; then IFS=, read -r -a prefixes <<<"$RATE_LIMIT_API_KEY_PREFIXES"; fi
  if [[ -n $ALLOWED_CIDRS ]]; then within="($(cidr_expression)) && "; fi
  for prefix in "${prefixes[@]}"; do
    expression="${within}request.headers['x-api-key'].startsWith('$prefix')"
    set_rule "$priority" "${limit[@]}" --expression="$expression" --enforce-on-key=all \
      --description="${RATE_LIMIT_PER_MIN}/min for keys starting $prefix"
    priority=$((priority + 1))
  done
  # Keys no longer listed: their rules go, so their requests count per address again.
  for ((; priority < KEY_RULE_FIRST + MAX_KEY_PREFIXES; priority++)); do
    if exists gcloud compute security-policies rules describe "$priority" "${target[@]}"; then
      run gcloud compute security-policies rules delete "$priority" "${target[@]}" --quiet
    fi
  done
  set_rule 1000 "${limit[@]}" --src-ip-ranges="$sources" --enforce-on-key=ip \
    --description="${RATE_LIMIT_PER_MIN} requests per minute per client address"
  run gcloud compute security-policies rules update 2147483647 "${target[@]}" --action="$fallback"
}

# Creates or updates the security policy's rule at priority $1 with the flags after it.
set_rule() {
  local priority=$1 target=(--security-policy="$EDGE_POLICY" --project="$PROJECT_ID")
  shift
  if exists gcloud compute security-policies rules describe "$priority" "${target[@]}"; then
    run gcloud compute security-policies rules update "$priority" "${target[@]}" "$@"
  else
    run gcloud compute security-policies rules create "$priority" "${target[@]}" "$@"
  fi
}

# ALLOWED_CIDRS as a Cloud Armor expression over the source address.
cidr_expression() {
  local cidr cidrs out=''
  IFS=, read -r -a cidrs <<<"$ALLOWED_CIDRS"
  for cidr in "${cidrs[@]}"; do out+="${out:+ || }inIpRange(origin.ip, '$cidr')"; done
  echo "$out"
}

# A backend service over the serverless NEGs of regions $2..., behind Cloud Armor (and IAP).
ensure_backend_service() {
  local name=$1 region group groups file=$WORK_DIR/backends-$1 iap=disabled
  shift
  if ! exists gcloud compute backend-services describe "$name" --global --project="$PROJECT_ID"; then
    run gcloud compute backend-services create "$name" --global --project="$PROJECT_ID" \
      --load-balancing-scheme=EXTERNAL_MANAGED
  fi
  read_to "$file" gcloud compute backend-services describe "$name" --global \
    --project="$PROJECT_ID" --format='value(backends[].group)' || true
  IFS=';' read -r -a groups <"$file" || true
  for region in "$@"; do
    if [[ " ${groups[*]:-} " != *"/regions/$region/networkEndpointGroups/$EDGE_NEG-$region "* ]]; then
      run gcloud compute backend-services add-backend "$name" --global --project="$PROJECT_ID" \
        --network-endpoint-group="$EDGE_NEG-$region" --network-endpoint-group-region="$region"
    fi
  done
  for group in "${groups[@]:-}"; do
    [[ -n $group ]] || continue
    region=${group%/networkEndpointGroups/*}
    region=${region##*/}
    if [[ " $* " != *" $region "* ]]; then
      echo "deploy.sh: warning: $name still sends traffic to $region, which REGIONS no longer names; to stop it:
  gcloud compute backend-services remove-backend $name --global --project=$PROJECT_ID --network-endpoint-group=${group##*/} --network-endpoint-group-region=$region" >&2
    fi
  done
  if [[ $EDGE_IAP == true ]]; then iap=enabled; fi
  if [[ $EDGE_IAP == true && -n $IAP_OAUTH_CLIENT_ID ]]; then
    # The client secret goes to gcloud only; the printed line names where it comes from.
    run_hiding "$IAP_CLIENT_SECRET" "<secret $IAP_OAUTH_CLIENT_SECRET_SECRET>" \
      gcloud compute backend-services update "$name" --global --project="$PROJECT_ID" \
      --security-policy="$EDGE_POLICY" \
      --iap="enabled,oauth2-client-id=$IAP_OAUTH_CLIENT_ID,oauth2-client-secret=$IAP_CLIENT_SECRET"
  else
    run gcloud compute backend-services update "$name" --global --project="$PROJECT_ID" \
      --security-policy="$EDGE_POLICY" --iap="$iap"
  fi
  if [[ $EDGE_IAP == true && -n $IAP_PROGRAMMATIC_CLIENTS ]]; then
    run gcloud iap settings set "$WORK_DIR/iap-settings.yaml" --project="$PROJECT_ID" \
      --resource-type=backend-services --service="$name"
  fi
  if [[ $EDGE_IAP == true && -n $IAP_MEMBERS ]]; then
    local member members
    IFS=, read -r -a members <<<"$IAP_MEMBERS"
    for member in "${members[@]}"; do
      run_retry gcloud iap web add-iam-policy-binding --project="$PROJECT_ID" \
        --resource-type=backend-services --service="$name" --member="$member" \
        --role=roles/iap.httpsResourceAccessor --condition=None
    done
  fi
}

# The URL maps, imported whole (an import creates or replaces): requests go to the nearest
# region; GET /health with REGION_HEADER to that region; plain HTTP is redirected to HTTPS.
write_url_maps() {
  local region priority=0
  {
    echo "name: $EDGE_URL_MAP"
    echo "defaultService: $COMPUTE_API/backendServices/$EDGE_BACKEND"
    echo "hostRules:"
    echo "- hosts: ['*']"
    echo "  pathMatcher: api"
    echo "pathMatchers:"
    echo "- name: api"
    echo "  defaultService: $COMPUTE_API/backendServices/$EDGE_BACKEND"
    echo "  routeRules:"
    for region in "${PROFILE_REGIONS[@]}"; do
      priority=$((priority + 1))
      echo "  - priority: $priority"
      echo "    matchRules:"
      echo "    - fullPathMatch: /health"
      echo "      headerMatches:"
      echo "      - headerName: $REGION_HEADER"
      echo "        exactMatch: $region"
      echo "    service: $COMPUTE_API/backendServices/$EDGE_BACKEND-$region"
    done
    if [[ $EDGE_JSON_ERRORS == true ]]; then
      echo "defaultCustomErrorResponsePolicy:"
      echo "  errorService: $COMPUTE_API/backendBuckets/$EDGE_ERROR_BACKEND"
      echo "  errorResponseRules:"
      local code
      for code in 403 429; do
        echo "  - matchResponseCodes: ['$code']"
        echo "    path: /edge-errors/$code.json"
        echo "    overrideResponseCode: $code"
      done
    fi
  } >"$WORK_DIR/urlmap.yaml"
  cat >"$WORK_DIR/http-redirect.yaml" <<EOF
name: $EDGE_REDIRECT_MAP
defaultUrlRedirect:
  httpsRedirect: true
  redirectResponseCode: MOVED_PERMANENTLY_DEFAULT
EOF
}

# The global external Application Load Balancer in front of the profile function, every part
# created when missing; the parts that carry settings are updated on every run.
# IAP's own OAuth client (its secret read from Secret Manager) and the OAuth clients of the
# programs allowed to call through IAP.
resolve_iap_clients() {
  IAP_CLIENT_SECRET=''
  if [[ -n $IAP_OAUTH_CLIENT_ID ]]; then
    echo "+ gcloud secrets versions access latest --secret=$IAP_OAUTH_CLIENT_SECRET_SECRET --project=$PROJECT_ID  # value not shown"
    if [[ $DRY_RUN == 1 ]]; then
      IAP_CLIENT_SECRET='<client secret>'
    else
      IAP_CLIENT_SECRET=$(gcloud secrets versions access latest \
        --secret="$IAP_OAUTH_CLIENT_SECRET_SECRET" --project="$PROJECT_ID") ||
        die "could not read the OAuth client secret from secret $IAP_OAUTH_CLIENT_SECRET_SECRET"
    fi
  fi
  if [[ -n $IAP_PROGRAMMATIC_CLIENTS ]]; then
    local client clients
    IFS=, read -r -a clients <<<"$IAP_PROGRAMMATIC_CLIENTS"
    {
      echo "accessSettings:"
      echo "  oauthSettings:"
      echo "    programmaticClients:"
      for client in "${clients[@]}"; do echo "    - $client"; done
    } >"$WORK_DIR/iap-settings.yaml"
  fi
}

ensure_edge() {
  local region cert global=(--global --project="$PROJECT_ID")
  if [[ $EDGE_IAP == true ]]; then resolve_iap_clients; fi
  if [[ $EDGE_JSON_ERRORS == true ]]; then ensure_error_pages; fi
  if ! exists gcloud compute addresses describe "$EDGE_ADDRESS" "${global[@]}"; then
    run gcloud compute addresses create "$EDGE_ADDRESS" "${global[@]}" --ip-version=IPV4 \
      --network-tier=PREMIUM
  fi
  cert=$(edge_certificate)
  if ! exists gcloud compute ssl-certificates describe "$cert" "${global[@]}"; then
    run gcloud compute ssl-certificates create "$cert" "${global[@]}" --domains="$DOMAIN"
  fi
  if ! exists gcloud compute ssl-policies describe "$EDGE_SSL_POLICY" "${global[@]}"; then
    run gcloud compute ssl-policies create "$EDGE_SSL_POLICY" "${global[@]}" --profile=MODERN \
      --min-tls-version=1.2
  fi
  ensure_security_policy
  for region in "${PROFILE_REGIONS[@]}"; do
    if ! exists gcloud compute network-endpoint-groups describe "$EDGE_NEG-$region" \
      --region="$region" --project="$PROJECT_ID"; then
      run gcloud compute network-endpoint-groups create "$EDGE_NEG-$region" --region="$region" \
        --project="$PROJECT_ID" --network-endpoint-type=serverless --cloud-run-service="$PROFILE_FN"
    fi
  done
  ensure_backend_service "$EDGE_BACKEND" "${PROFILE_REGIONS[@]}"
  for region in "${PROFILE_REGIONS[@]}"; do
    ensure_backend_service "$EDGE_BACKEND-$region" "$region"
  done
  write_url_maps
  run gcloud compute url-maps import "$EDGE_URL_MAP" "${global[@]}" --source="$WORK_DIR/urlmap.yaml" --quiet
  run gcloud compute url-maps import "$EDGE_REDIRECT_MAP" "${global[@]}" \
    --source="$WORK_DIR/http-redirect.yaml" --quiet
  local https=(--url-map="$EDGE_URL_MAP" --global-url-map --ssl-certificates="$cert"
    --global-ssl-certificates --ssl-policy="$EDGE_SSL_POLICY" --global-ssl-policy)
  if exists gcloud compute target-https-proxies describe "$EDGE_HTTPS_PROXY" "${global[@]}"; then
    run gcloud compute target-https-proxies update "$EDGE_HTTPS_PROXY" "${global[@]}" "${https[@]}"
  else
    run gcloud compute target-https-proxies create "$EDGE_HTTPS_PROXY" "${global[@]}" "${https[@]}"
  fi
  if ! exists gcloud compute target-http-proxies describe "$EDGE_HTTP_PROXY" "${global[@]}"; then
    run gcloud compute target-http-proxies create "$EDGE_HTTP_PROXY" "${global[@]}" \
      --url-map="$EDGE_REDIRECT_MAP" --global-url-map
  fi
  local spec rule target proxy port
  for spec in "$EDGE_HTTPS_RULE https $EDGE_HTTPS_PROXY 443" "$EDGE_HTTP_RULE http $EDGE_HTTP_PROXY 80"; do
    read -r rule target proxy port <<<"$spec"
    if ! exists gcloud compute forwarding-rules describe "$rule" "${global[@]}"; then
      run gcloud compute forwarding-rules create "$rule" "${global[@]}" \
        --load-balancing-scheme=EXTERNAL_MANAGED --network-tier=PREMIUM --address="$EDGE_ADDRESS" \
        --global-address --target-"$target"-proxy="$proxy" --ports="$port"
    fi
  done
}

# ---- Monitoring: alerts, a dashboard, SLOs and uptime checks (README "When an alert fires") ----
# The definitions are TypeScript (shared/ops/), checked by the tests against Cloud Monitoring's
# own message types; deploy.sh lists what exists, asks shared/ops/ops-cli.ts for the steps and
# runs them. Log-based metrics, alerting policies (gcloud alpha: its only surface), dashboards and
# notification channels (beta) go through gcloud; services, SLOs and uptime checks through the
# REST API (services and SLOs have no gcloud command), with curl and the caller's access token.
MONITORING=${MONITORING:-on}
ALERT_EMAIL=${ALERT_EMAIL:-}
ALERT_CHANNELS=${ALERT_CHANNELS:-}
UPTIME_API_KEY_SECRET=${UPTIME_API_KEY_SECRET:-}
MONITORING_API=https://monitoring.googleapis.com/v3
OPS_DIR=$WORK_DIR/ops
# Filled in by ensure_monitoring / verify_monitoring, read by ops_cli.
ALERT_CHANNEL_NAMES=''
UPTIME_HOST=''
UPTIME_API_KEY=''
OPS_TOKEN=''

# Runs shared/ops/ops-cli.ts with what deploy.sh derived (the thresholds are read from the
# environment, ALERT_*, SLO_*, UPTIME_PERIOD_MINS).
ops_cli() {
  local regions api_keys=false max_bytes=''
  regions=$(
    IFS=,
    echo "${PROFILE_REGIONS[*]}"
  )
  if [[ -n $API_KEYS_SECRET ]]; then api_keys=true; fi
  if [[ $MAPPING_STORE == snapshot ]]; then max_bytes=$MAPPING_MAX_BYTES; fi
  env PROJECT_ID="$PROJECT_ID" NAME_PREFIX="$NAME_PREFIX" PROFILE_REGIONS="$regions" \
    MAPPING_STORE="$MAPPING_STORE" EDGE="$EDGE" DOMAIN="$DOMAIN" EDGE_IAP="$EDGE_IAP" \
    API_KEYS_ON="$api_keys" PROFILE_ALLOW_UNAUTHENTICATED="$PROFILE_ALLOW_UNAUTHENTICATED" \
    UPTIME_HOST="$UPTIME_HOST" UPTIME_API_KEY="$UPTIME_API_KEY" MAPPING_MAX_BYTES="$max_bytes" \
    ALERT_CHANNEL_NAMES="$ALERT_CHANNEL_NAMES" \
    "$HERE/node_modules/.bin/tsx" "$HERE/shared/ops/ops-cli.ts" "$@"
}

# The monitoring settings deploy.sh reads itself; the rest are checked by ops-cli.ts (check).
validate_monitoring() {
  [[ $MONITORING == on || $MONITORING == off ]] || die "MONITORING must be on or off"
  [[ $MONITORING == on ]] || return 0
  # Spaces around the commas are no part of an address.
  ALERT_EMAIL=$(sed -E 's/[[:space:]]*,[[:space:]]*/,/g; s/^[[:space:]]+|[[:space:]]+$//g' <<<"$ALERT_EMAIL")
  ALERT_CHANNELS=${ALERT_CHANNELS//[[:space:]]/}
  local email channel list
  IFS=, read -r -a list <<<"$ALERT_EMAIL"
  for email in "${list[@]}"; do
    [[ $email =~ ^[^@,\"[:space:]]+@[A-Za-z0-9.-]+\.[A-Za-z]+$ ]] || die "ALERT_EMAIL: '$email' is not an email address"
  done
  IFS=, read -r -a list <<<"$ALERT_CHANNELS"
  for channel in "${list[@]}"; do
    [[ $channel =~ ^(projects/[a-z0-9-]+/notificationChannels/)?[0-9]+$ ]] ||
      die "ALERT_CHANNELS: '$channel' is not a notification channel (projects/PROJECT/notificationChannels/ID, or the ID)"
  done
  [[ -z $UPTIME_API_KEY_SECRET || $UPTIME_API_KEY_SECRET =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
    die "UPTIME_API_KEY_SECRET must be a Secret Manager secret name"
  # Nothing exists yet: say what will be made, and whether alerts are on.
  ALERT_CHANNEL_NAMES=$ALERT_EMAIL${ALERT_EMAIL:+${ALERT_CHANNELS:+,}}$ALERT_CHANNELS
  UPTIME_HOST=checked-after-deploy
  if [[ -n $UPTIME_API_KEY_SECRET ]]; then UPTIME_API_KEY=from-secret-manager; fi
  ops_cli check || die "monitoring settings refused (above)"
  ALERT_CHANNEL_NAMES=''
  UPTIME_HOST=''
  UPTIME_API_KEY=''
}

# Writes what describe-style command $2... prints to file $1, or dies with its message. A dry run
# reads nothing (an empty file).
ops_read() {
  local file=$1
  shift
  : >"$file"
  if [[ $DRY_RUN == 1 ]]; then
    would read "$@"
    return 0
  fi
  "$@" >"$file" 2>"$file.err" || die "$1 $2 $3 $4 failed: $(head -c 500 "$file.err")"
}

# The access token for the REST calls, once (never printed).
ops_token() {
  [[ -z $OPS_TOKEN && $DRY_RUN != 1 ]] || return 0
  echo "+ gcloud auth print-access-token  # for the Monitoring API calls' Authorization header, not shown"
  OPS_TOKEN=$(gcloud auth print-access-token) || die "no access token for the Monitoring API: run gcloud auth login"
}

# Calls the Monitoring API: METHOD PATH [BODY_FILE]; the answer goes to OPS_DIR/answer.json. The
# token reaches curl on stdin, never on a command line. GET is a lookup: 404 leaves the answer
# empty (and a dry run reads nothing); any other failure stops the run with the API's message.
monitoring_api() {
  local method=$1 path=$2 body=${3:-} code
  local call=(curl --silent --show-error --max-time 60 --request "$method"
    --output "$OPS_DIR/answer.json" --write-out '%{http_code}' --config -)
  if [[ -n $body ]]; then call+=(--header 'Content-Type: application/json' --data-binary "@$body"); fi
  call+=("$MONITORING_API/$path")
  : >"$OPS_DIR/answer.json"
  if [[ $method == GET ]]; then
    if [[ $DRY_RUN == 1 ]]; then
      would read "${call[@]}"
      return 0
    fi
  else
    printf '+'
    printf ' %q' "${call[@]}"
    printf '  # Authorization from gcloud auth print-access-token, not shown\n'
    [[ $DRY_RUN != 1 ]] || return 0
  fi
  ops_token
  code=$(printf 'header = "Authorization: Bearer %s"\n' "$OPS_TOKEN" | "${call[@]}") || code=000
  if [[ $method == GET && $code == 404 ]]; then
    : >"$OPS_DIR/answer.json"
    return 0
  fi
  [[ $code == 2?? ]] ||
    die "the Monitoring API answered $code to $method $path: $(head -c 500 "$OPS_DIR/answer.json")"
}

# The notification channels of ALERT_CHANNELS, and one email channel per ALERT_EMAIL address,
# found by its address or created (labelled as deploy.sh's, so teardown removes it) unless $1 is
# "find" (verify creates nothing).
resolve_alert_channels() {
  local mode=${1:-create} names=() item list name
  IFS=, read -r -a list <<<"$ALERT_CHANNELS"
  for item in "${list[@]}"; do
    if [[ $item == projects/* ]]; then names+=("$item"); else names+=("projects/$PROJECT_ID/notificationChannels/$item"); fi
  done
  IFS=, read -r -a list <<<"$ALERT_EMAIL"
  for item in "${list[@]}"; do
    ops_read "$OPS_DIR/channel" gcloud beta monitoring channels list --project="$PROJECT_ID" \
      --filter="type=\"email\" AND labels.email_address=\"$item\"" --format='value(name)'
    name=$(head -n 1 "$OPS_DIR/channel")
    if [[ -z $name && $mode == create ]]; then
      local create=(gcloud beta monitoring channels create --project="$PROJECT_ID" --type=email
        --display-name="$NAME_PREFIX alerts: $item" --channel-labels="email_address=$item"
        --user-labels="managed-by=deploy-sh,deployment=$NAME_PREFIX" --format='value(name)')
      printf '+'
      printf ' %q' "${create[@]}"
      printf '\n'
      if [[ $DRY_RUN == 1 ]]; then
        name="projects/$PROJECT_ID/notificationChannels/NEW-CHANNEL-FOR-$item"
      else
        name=$("${create[@]}") || die "could not create the email channel for $item (above)"
      fi
    fi
    if [[ -n $name ]]; then names+=("$name"); else echo "# no email channel for $item yet: deploy creates it"; fi
  done
  ALERT_CHANNEL_NAMES=$(
    IFS=,
    echo "${names[*]}"
  )
}

# What the uptime checks call with: the function's own host (without EDGE=lb) and a key for
# /health when the function requires one (from UPTIME_API_KEY_SECRET, never printed).
resolve_uptime_target() {
  if [[ $EDGE != lb ]]; then
    local url
    url=$(function_url "$PROFILE_FN" "$REGION") || url=''
    UPTIME_HOST=${url#https://}
    UPTIME_HOST=${UPTIME_HOST%%/*}
  fi
  if [[ -n $API_KEYS_SECRET && -n $UPTIME_API_KEY_SECRET ]]; then
    echo "+ gcloud secrets versions access latest --secret=$UPTIME_API_KEY_SECRET --project=$PROJECT_ID  # the uptime checks' x-api-key, not shown"
    if [[ $DRY_RUN == 1 ]]; then
      UPTIME_API_KEY='<key from secret manager>'
    else
      UPTIME_API_KEY=$(gcloud secrets versions access latest --secret="$UPTIME_API_KEY_SECRET" \
        --project="$PROJECT_ID") || die "could not read the uptime checks' API key from secret $UPTIME_API_KEY_SECRET"
    fi
  fi
}

# What exists now, into directory $1 (see shared/ops/ops-cli.ts).
list_monitoring() {
  local dir=$1 project=(--project="$PROJECT_ID")
  mkdir -p "$dir"
  ops_read "$dir/metrics.json" gcloud logging metrics list "${project[@]}" --format=json
  ops_read "$dir/policies.json" gcloud alpha monitoring policies list "${project[@]}" --format=json
  ops_read "$dir/dashboards.json" gcloud monitoring dashboards list "${project[@]}" --format=json
  ops_read "$dir/channels.json" gcloud beta monitoring channels list "${project[@]}" --format=json
  monitoring_api GET "projects/$PROJECT_ID/services/$NAME_PREFIX"
  cp "$OPS_DIR/answer.json" "$dir/service.json"
  : >"$dir/slos.json"
  if [[ -s $dir/service.json ]]; then
    monitoring_api GET "projects/$PROJECT_ID/services/$NAME_PREFIX/serviceLevelObjectives"
    cp "$OPS_DIR/answer.json" "$dir/slos.json"
  fi
  monitoring_api GET "projects/$PROJECT_ID/uptimeCheckConfigs"
  cp "$OPS_DIR/answer.json" "$dir/uptime.json"
}

# Runs the steps ops-cli.ts printed (KIND OP ID TARGET FILE MASK); counts them by what they did.
apply_monitoring() {
  local kind op id target file mask project=(--project="$PROJECT_ID")
  declare -A tally=([create]=0 [update]=0 [delete]=0 [keep]=0)
  local services="projects/$PROJECT_ID/services"
  while read -r -u 4 kind op id target file mask; do
    [[ -n $kind ]] || continue
    tally[$op]=$((tally[$op] + 1))
    case "$kind $op" in
      *' keep') ;;
      'metric create') run gcloud logging metrics create "$id" --config-from-file="$file" "${project[@]}" ;;
      'metric update') run gcloud logging metrics update "$id" --config-from-file="$file" "${project[@]}" ;;
      'metric delete') run gcloud logging metrics delete "$id" "${project[@]}" --quiet ;;
      'service create') monitoring_api POST "$services?serviceId=$id" "$file" ;;
      'service update') monitoring_api PATCH "$services/$id?updateMask=$mask" "$file" ;;
      'slo create') monitoring_api POST "$services/$NAME_PREFIX/serviceLevelObjectives?serviceLevelObjectiveId=$id" "$file" ;;
      'slo update') monitoring_api PATCH "$services/$NAME_PREFIX/serviceLevelObjectives/$id?updateMask=$mask" "$file" ;;
      'service delete' | 'slo delete' | 'uptime delete') monitoring_api DELETE "$target" ;;
      'uptime create') monitoring_api POST "projects/$PROJECT_ID/uptimeCheckConfigs" "$file" ;;
      'uptime update') monitoring_api PATCH "$target?updateMask=$mask" "$file" ;;
      # A new log-based metric takes a moment to be known to alerting: retried like propagation.
      'policy create') run_retry gcloud alpha monitoring policies create --policy-from-file="$file" "${project[@]}" ;;
      'policy update') run_retry gcloud alpha monitoring policies update "$target" --policy-from-file="$file" "${project[@]}" ;;
      'policy delete') run gcloud alpha monitoring policies delete "$target" "${project[@]}" --quiet ;;
      'dashboard create') run gcloud monitoring dashboards create --config-from-file="$file" "${project[@]}" ;;
      'dashboard update') run gcloud monitoring dashboards update "$target" --config-from-file="$file" "${project[@]}" ;;
      'dashboard delete') run gcloud monitoring dashboards delete "$target" "${project[@]}" --quiet ;;
      'channel delete') run gcloud beta monitoring channels delete "$target" "${project[@]}" --force --quiet ;;
      *) die "unknown monitoring step: $kind $op" ;;
    esac
  done 4<"$OPS_DIR/plan"
  echo "# monitoring: ${tally[create]} created, ${tally[update]} updated, ${tally[delete]} deleted, ${tally[keep]} unchanged"
}

# Alerts (to the channels of ALERT_EMAIL and ALERT_CHANNELS), log-based metrics, SLOs, uptime
# checks and the dashboard: created when missing, updated when different, left alone otherwise.
ensure_monitoring() {
  mkdir -p "$OPS_DIR"
  resolve_alert_channels create
  resolve_uptime_target
  # The uptime checks present an OIDC token of Cloud Monitoring's service agent to a private function.
  if [[ $EDGE != lb && $PROFILE_ALLOW_UNAUTHENTICATED != true ]] &&
    [[ -z $API_KEYS_SECRET || -n $UPTIME_API_KEY_SECRET ]]; then
    local number=PROJECT_NUMBER
    if read_to "$OPS_DIR/project-number" gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)'; then
      number=$(<"$OPS_DIR/project-number")
    fi
    run_retry gcloud functions add-invoker-policy-binding "$PROFILE_FN" --project="$PROJECT_ID" \
      --region="$REGION" --member="serviceAccount:service-${number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
  fi
  list_monitoring "$OPS_DIR/existing"
  ops_cli plan "$OPS_DIR/existing" "$OPS_DIR/wanted" >"$OPS_DIR/plan" ||
    die "could not plan the monitoring (above)"
  apply_monitoring
}

# verify: what of the monitoring exists, what is missing or differs (it changes nothing).
verify_monitoring() {
  mkdir -p "$OPS_DIR"
  # The near-budget alert's threshold follows the profile function's sizing.
  if [[ $MAPPING_STORE == snapshot ]]; then size_profile >/dev/null; fi
  resolve_alert_channels find
  if [[ $EDGE != lb ]] && exists gcloud functions describe "$PROFILE_FN" --gen2 \
    --project="$PROJECT_ID" --region="$REGION"; then
    resolve_uptime_target
  elif [[ $EDGE == lb ]]; then
    resolve_uptime_target
  fi
  list_monitoring "$OPS_DIR/existing"
  local code=0
  ops_cli report "$OPS_DIR/existing" || code=$?
  case $code in
    0) echo "Verified: the monitoring is complete (alerts, metrics, SLOs, uptime checks, dashboard)." ;;
    3) echo "Monitoring: some of it is missing or differs (above); deploy again to create or update it." ;;
    *) die "could not check the monitoring (above)" ;;
  esac
}

# Everything deploy.sh made for monitoring (found by its labels and names), alerts first.
teardown_monitoring() {
  mkdir -p "$OPS_DIR"
  list_monitoring "$OPS_DIR/existing"
  ops_cli teardown "$OPS_DIR/existing" "$OPS_DIR/wanted" >"$OPS_DIR/plan" ||
    die "could not plan the monitoring's removal (above)"
  apply_monitoring
}

deploy() {
  validate_edge
  local region
  for region in "${PROFILE_REGIONS[@]}"; do
    if [[ -z $(region_setting AEROSPIKE_HOSTS "$region") ]]; then
      if ((${#PROFILE_REGIONS[@]} > 1)); then
        die "AEROSPIKE_HOSTS is required (see --help): $region has no AEROSPIKE_HOSTS_$(region_key "$region") either"
      fi
      die "AEROSPIKE_HOSTS is required (see --help)"
    fi
    if ((${#PROFILE_REGIONS[@]} > 1)) && ! has_region_setting AEROSPIKE_HOSTS "$region"; then
      echo "deploy.sh: warning: $region has no Aerospike seeds of its own (AEROSPIKE_HOSTS_$(region_key "$region")): its profile function reads AEROSPIKE_HOSTS, across regions if the cluster is elsewhere" >&2
    fi
  done
  [[ $VPC_EGRESS == private-ranges-only || $VPC_EGRESS == all ]] ||
    die "VPC_EGRESS must be private-ranges-only or all"
  [[ $AEROSPIKE_PUBLIC == true || $AEROSPIKE_PUBLIC == false ]] || die "AEROSPIKE_PUBLIC must be true or false"
  for region in "${PROFILE_REGIONS[@]}"; do check_egress "$region"; done
  [[ -n ${MONGO_DATABASE:-} ]] || die "MONGO_DATABASE is required (see --help)"
  require_mapping_table
  [[ $JOB_TIMEOUT =~ ^[0-9]+s$ ]] || die "JOB_TIMEOUT must be seconds, e.g. 1800s"
  # It goes into IAM conditions and the retention rule as it is.
  [[ $SNAPSHOT_PREFIX =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ ]] ||
    die "SNAPSHOT_PREFIX must be folder names joined by /, without a leading or trailing /"
  [[ $PROFILE_CPU_ALWAYS_ALLOCATED == true || $PROFILE_CPU_ALWAYS_ALLOCATED == false ]] ||
    die "PROFILE_CPU_ALWAYS_ALLOCATED must be true or false"
  if [[ $MAPPING_STORE == bigtable ]]; then
    validate_bigtable
    warn_bigtable_regions
    size_bigtable_profile
  else
    size_profile
  fi
  validate_run_settings
  size_aerospike_connections
  choose_bucket_location
  check_org_policies
  validate_monitoring

  write_env_files
  if [[ $DRY_RUN == 1 ]]; then show_env_files; fi
  stage_source
  enable_apis
  ensure_bucket
  ensure_service_account profile "Profile API: profile function"
  ensure_service_account catalog "Profile API: catalog snapshot job"
  if [[ $MAPPING_STORE == bigtable ]]; then
    ensure_service_account sync "Profile API: Bigtable mapping sync job"
  else
    ensure_service_account mapping "Profile API: mapping snapshot job"
  fi
  ensure_service_account scheduler "Profile API: Cloud Scheduler caller"
  ensure_build_account
  ensure_secret "$MONGO_URI_SECRET" MONGO_URI
  if [[ $MAPPING_STORE == bigtable ]]; then ensure_bigtable; fi
  if [[ $MAPPING_STORE == bigtable ]]; then ensure_shard_topics; fi
  grant_access
  if [[ $EDGE == lb && $EDGE_IAP == true ]]; then resolve_iap_agent; fi
  deploy_functions
  if [[ $MAPPING_STORE == bigtable ]]; then deploy_sync_workers; fi
  ensure_scheduler_job "${NAME_PREFIX}-snapshot-catalog" "$CATALOG_FN" "$CATALOG_SCHEDULE"
  if [[ $MAPPING_STORE == bigtable ]]; then
    ensure_scheduler_job "$SYNC_FN" "$SYNC_FN" "$SYNC_SCHEDULE"
  else
    ensure_scheduler_job "${NAME_PREFIX}-snapshot-mapping" "$MAPPING_FN" "$MAPPING_SCHEDULE"
  fi
  note_unused_mapping_job
  if [[ $EDGE == lb ]]; then ensure_edge; fi
  if [[ $MONITORING == on ]]; then ensure_monitoring; fi

  # The function's own URL only matters without a front door (a lookup with gcloud).
  local url
  if [[ $EDGE == lb ]]; then
    local ip
    ip=$(edge_ip)
    cat <<EOF

Deployed. Front door: https://$DOMAIN (address $ip), in front of the profile function in
${PROFILE_REGIONS[*]}; the functions' own URLs no longer answer from the internet.
Point $DOMAIN's DNS A record at $ip: Google's certificate becomes ACTIVE once the name
resolves to it (up to an hour), and HTTPS answers from then on.
EOF
  else
    url=$(function_url "$PROFILE_FN" "${PROFILE_REGIONS[0]}")
    cat <<EOF

Deployed. Profile function: $url
EOF
  fi
  if [[ $MAPPING_STORE == bigtable ]]; then
    cat <<EOF
Mapping: Bigtable table $BIGTABLE_TABLE (instance $BIGTABLE_INSTANCE, project $BIGTABLE_PROJECT),
kept current by $SYNC_FN (its shards written by up to $SYNC_MAX_WORKERS $SHARD_FN instances).
Catalog snapshots: $SNAPSHOT_URI. To run the jobs now:
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-catalog --location=$REGION --project=$PROJECT_ID
  gcloud scheduler jobs run $SYNC_FN --location=$REGION --project=$PROJECT_ID
A new table is empty until the first version lands; to write the latest window again (a repair):
  gcloud functions call $SYNC_FN --gen2 --region=$REGION --project=$PROJECT_ID --data='{"resync":true}'
EOF
  else
    cat <<EOF
Snapshots: $SNAPSHOT_URI. The scheduler runs the jobs; to publish now:
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-catalog --location=$REGION --project=$PROJECT_ID
  gcloud scheduler jobs run $MAPPING_FN --location=$REGION --project=$PROJECT_ID
EOF
  fi
  cat <<EOF
Check the mapping query against the real table before its first run (same settings):
  ./deploy.sh verify
EOF
  if [[ $EDGE == lb ]]; then
    if [[ -n $API_KEYS_SECRET ]]; then
      cat <<EOF
Try, with API_KEY one of the keys in secret $API_KEYS_SECRET:
  curl -H "x-api-key: \$API_KEY" 'https://$DOMAIN/health'
  curl -H "x-api-key: \$API_KEY" 'https://$DOMAIN/?id=<user id>'
Check every region through the load balancer (same settings):
  VERIFY_API_KEY=\$API_KEY ./deploy.sh verify
EOF
    else
      cat <<EOF
Callers pass Identity-Aware Proxy (roles/iap.httpsResourceAccessor, see IAP_MEMBERS) with a
token IAP accepts; check every region through the load balancer (same settings):
  VERIFY_ID_TOKEN=<token> ./deploy.sh verify
EOF
    fi
  else
    cat <<EOF
Try:
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/health'
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/?id=<user id>'
EOF
  fi
}

# curl configuration (read from stdin, so never on a command line) holding verify's credentials.
edge_credentials() {
  if [[ -n ${VERIFY_API_KEY:-} ]]; then
    printf 'header = "x-api-key: %s"\n' "$(json_chars "$VERIFY_API_KEY")"
  fi
  if [[ -n ${VERIFY_ID_TOKEN:-} ]]; then
    printf 'header = "Authorization: Bearer %s"\n' "$(json_chars "$VERIFY_ID_TOKEN")"
  fi
}

# What a failed /health answer through the load balancer means; $1 the status, $2 the body.
edge_failure() {
  local body
  body=$(head -c 300 "$2" 2>/dev/null | tr -s '\n\r\t' '   ')
  case $1 in
    000) echo "no answer (curl's error above): does $DOMAIN resolve to the load balancer, with its certificate ACTIVE?" ;;
    401) echo "401 from the function: the credentials were refused (VERIFY_API_KEY must be one of the keys in API_KEYS_SECRET) $body" ;;
    403) echo "403 from the edge: this machine is outside ALLOWED_CIDRS, or IAP refused the caller $body" ;;
    429) echo "429 from the edge: over RATE_LIMIT_PER_MIN $body" ;;
    503) echo "503: the function is not ready: $body" ;;
    *) echo "HTTP $1: $body" ;;
  esac
}

# Dies unless the certificate of DOMAIN is ACTIVE (HTTPS cannot answer before).
check_certificate() {
  local cert status
  cert=$(edge_certificate)
  if read_to "$WORK_DIR/cert-status" gcloud compute ssl-certificates describe "$cert" --global \
    --project="$PROJECT_ID" --format='value(managed.status)'; then
    status=$(<"$WORK_DIR/cert-status")
    if [[ $status != ACTIVE ]]; then
      die "certificate $cert for $DOMAIN is ${status:-not ready}: point $DOMAIN's DNS A record at $(edge_ip) and wait; Google provisions it once the name resolves there (up to an hour)"
    fi
  elif [[ $DRY_RUN != 1 ]]; then
    die "there is no certificate $cert for $DOMAIN: deploy with EDGE=lb first"
  fi
}

# GET /health through the load balancer, pinned to each region in turn by REGION_HEADER.
# EDGE_VERIFY_URL (tests): another address than https://DOMAIN.
verify_edge() {
  [[ -n $DOMAIN ]] || die "DOMAIN is required with EDGE=lb (see --help)"
  if [[ -n $API_KEYS_SECRET && -z ${VERIFY_API_KEY:-} ]]; then
    die "VERIFY_API_KEY is required to check /health through the load balancer: the function answers 401 without one of the keys in $API_KEYS_SECRET"
  fi
  local url=${EDGE_VERIFY_URL:-https://$DOMAIN} region code status failures=() note='no credentials'
  if [[ -z ${EDGE_VERIFY_URL:-} ]]; then check_certificate; fi
  if [[ -n ${VERIFY_API_KEY:-} ]]; then note='x-api-key from VERIFY_API_KEY, not shown'; fi
  if [[ -n ${VERIFY_ID_TOKEN:-} ]]; then note+=', Authorization from VERIFY_ID_TOKEN, not shown'; fi
  for region in "${PROFILE_REGIONS[@]}"; do
    local body=$WORK_DIR/health-$region.json
    local get=(curl --silent --show-error --max-time 30 --output "$body" --write-out '%{http_code}'
      --header "$REGION_HEADER: $region" "$url/health")
    printf '+'
    printf ' %q' "${get[@]}"
    printf '  # %s\n' "$note"
    [[ $DRY_RUN != 1 ]] || continue
    code=$(edge_credentials | "${get[@]}" --config -) || true
    code=${code:-000}
    if [[ $code == 200 ]]; then
      status=$(grep -o '"status": *"[a-z]*"' "$body" | head -n 1 | cut -d'"' -f4) || true
      echo "# $region: 200 ${status:-}"
    else
      failures+=("$region: $(edge_failure "$code" "$body")")
    fi
  done
  if ((${#failures[@]})); then
    die "/health did not answer through $url in every region:$(printf '\n  %s' "${failures[@]}")"
  fi
}

# Checks the mapping query against the real table with a BigQuery dry run (free): the compiled
# job code locally, then the deployed job when there is one. Bigtable mode: the table too; a
# front door: /health of every region through it.
verify() {
  require_mapping_table
  local dist=${DEPLOY_DIST_DIR:-dist} vars=() name
  # DEPLOY_DIST_DIR (tests): already compiled code to run instead of building dist/.
  if [[ -z ${DEPLOY_DIST_DIR:-} ]]; then run npm run build --silent; fi
  for name in MAPPING_TABLE MAPPING_PERSON_COLUMN MAPPING_ID_COLUMN MAPPING_TYPE_COLUMN \
    MAPPING_PARTITION_COLUMN MAPPING_LOOKBACK_DAYS MAPPING_WINDOW_DAYS BIGQUERY_PROJECT \
    BIGQUERY_LOCATION ID_TYPES_JSON; do
    if [[ -n ${!name:-} ]]; then vars+=("$name=${!name}"); fi
  done
  # The token goes through the environment, never on a printed command line.
  if [[ -z ${GOOGLE_OAUTH_ACCESS_TOKEN:-} ]]; then
    echo "+ gcloud auth print-access-token  # into GOOGLE_OAUTH_ACCESS_TOKEN, not shown"
    if [[ $DRY_RUN != 1 ]]; then
      GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token) ||
        die "no access token for BigQuery: run gcloud auth login, or set GOOGLE_OAUTH_ACCESS_TOKEN"
      export GOOGLE_OAUTH_ACCESS_TOKEN
    fi
  fi
  run env "${vars[@]}" node "$dist/functions/snapshot-mapping/dry-run.js" ||
    die "the mapping query does not pass BigQuery's dry run against $MAPPING_TABLE (BigQuery's message is above)"

  if [[ -n ${BIGQUERY_EMULATOR_HOST:-} ]]; then
    echo "# BIGQUERY_EMULATOR_HOST is set: checked against that server only, not the deployed job"
  elif [[ $MAPPING_STORE == bigtable ]]; then
    check_bigtable_table
    check_sync_workers
    # The sync job has no dry run: a call would sync for real.
    echo "# MAPPING_STORE=bigtable: the deployed $SYNC_FN is not called (it has no dry run)"
  elif exists gcloud functions describe "$MAPPING_FN" --gen2 --project="$PROJECT_ID" \
    --region="$REGION" || [[ $DRY_RUN == 1 ]]; then
    run gcloud functions call "$MAPPING_FN" --gen2 --project="$PROJECT_ID" --region="$REGION" \
      --data='{"dryRun":true}' ||
      die "the deployed $MAPPING_FN failed its dry run (above; details in its log): deploy again, or fix its settings"
  else
    echo "# $MAPPING_FN is not deployed: checked the local code only"
  fi
  if [[ $EDGE == lb ]]; then verify_edge; fi
  # With a BigQuery test server there is no project to look at.
  if [[ $MONITORING == on && -z ${BIGQUERY_EMULATOR_HOST:-} ]]; then verify_monitoring; fi
  echo "Verified: the mapping query is valid against $MAPPING_TABLE."
  if [[ $MAPPING_STORE == bigtable && -z ${BIGQUERY_EMULATOR_HOST:-} ]]; then
    echo "Verified: Bigtable table $BIGTABLE_TABLE has its column families; the shard dispatch ($SHARD_TOPIC, $SHARD_PUSH to $SHARD_FN, $SHARD_DEAD) is in place."
  fi
  if [[ $EDGE == lb ]]; then
    echo "Verified: /health answers through ${EDGE_VERIFY_URL:-https://$DOMAIN} in ${PROFILE_REGIONS[*]}."
  fi
}

# Pauses KIND's scheduler job, so that its next run does not publish over the rollback, then has
# the job republish VERSION as a new object and manifest: the retention rule counts from when a
# version was superseded, so an old object named by the current manifest could otherwise go.
rollback() {
  local kind=$ROLLBACK_KIND version=$ROLLBACK_VERSION
  if [[ $kind == mapping && $MAPPING_STORE == bigtable ]]; then
    die "MAPPING_STORE=bigtable keeps no mapping snapshots to roll back to: to write the latest window again, resync
  gcloud functions call $SYNC_FN --gen2 --region=$REGION --project=$PROJECT_ID --data='{\"resync\":true}'"
  fi
  # The scheduler job has its function's name.
  local job=${NAME_PREFIX}-snapshot-$kind
  local resume="gcloud scheduler jobs resume $job --project=$PROJECT_ID --location=$REGION"
  # Pausing a paused job fails, and a rollback may follow another one.
  local describe=(gcloud scheduler jobs describe "$job" --project="$PROJECT_ID" --location="$REGION"
    --format='value(state)') state=''
  if [[ $DRY_RUN == 1 ]]; then
    would check "${describe[@]}"
  else
    state=$("${describe[@]}")
  fi
  if [[ $state == PAUSED ]]; then
    echo "# $job is paused already"
  else
    run gcloud scheduler jobs pause "$job" --project="$PROJECT_ID" --location="$REGION"
  fi
  run gcloud functions call "$job" --gen2 --project="$PROJECT_ID" --region="$REGION" \
    --data="{\"rollbackTo\":\"$version\"}" ||
    die "the rollback of $kind to $version failed (above; details in the $job log). The job stays paused; when fixed:
  $resume"
  cat <<EOF

Rolled $kind back to $version: republished as a new version; profile instances switch at their
next refresh (REFRESH_INTERVAL_SECS). The scheduler job stays paused, or its next run would
publish over the rollback. When the source is fixed:
  $resume
EOF
}

# Deletes the compute resource $2 of kind $1 (describe flags after) when it exists.
delete_compute() {
  local kind=$1 name=$2
  shift 2
  if exists gcloud compute "$kind" describe "$name" "$@" --project="$PROJECT_ID"; then
    run gcloud compute "$kind" delete "$name" "$@" --project="$PROJECT_ID" --quiet
  fi
}

# The load balancer's parts, each after what refers to it.
teardown_edge() {
  local region cert certs=() file=$WORK_DIR/edge-certs
  delete_compute forwarding-rules "$EDGE_HTTPS_RULE" --global
  delete_compute forwarding-rules "$EDGE_HTTP_RULE" --global
  # The proxy knows its certificates, including those of earlier DOMAINs.
  if [[ -n $DOMAIN ]]; then certs+=("$(edge_certificate)"); fi
  if read_to "$file" gcloud compute target-https-proxies describe "$EDGE_HTTPS_PROXY" --global \
    --project="$PROJECT_ID" --format='value(sslCertificates)'; then
    local urls url
    IFS=';' read -r -a urls <"$file" || true
    for url in "${urls[@]:-}"; do
      url=${url##*/}
      if [[ -n $url && " ${certs[*]:-} " != *" $url "* ]]; then certs+=("$url"); fi
    done
  fi
  delete_compute target-https-proxies "$EDGE_HTTPS_PROXY" --global
  delete_compute target-http-proxies "$EDGE_HTTP_PROXY" --global
  delete_compute url-maps "$EDGE_URL_MAP" --global
  delete_compute url-maps "$EDGE_REDIRECT_MAP" --global
  for cert in "${certs[@]:-}"; do
    if [[ -n $cert ]]; then delete_compute ssl-certificates "$cert" --global; fi
  done
  delete_compute ssl-policies "$EDGE_SSL_POLICY" --global
  delete_compute backend-services "$EDGE_BACKEND" --global
  for region in "${PROFILE_REGIONS[@]}"; do
    delete_compute backend-services "$EDGE_BACKEND-$region" --global
  done
  delete_compute backend-buckets "$EDGE_ERROR_BACKEND"
  for region in "${PROFILE_REGIONS[@]}"; do
    delete_compute network-endpoint-groups "$EDGE_NEG-$region" --region="$region"
  done
  delete_compute security-policies "$EDGE_POLICY"
  delete_compute addresses "$EDGE_ADDRESS" --global
  if exists gcloud storage buckets describe "gs://$EDGE_ERROR_BUCKET" --project="$PROJECT_ID"; then
    run gcloud storage rm --recursive "gs://$EDGE_ERROR_BUCKET" --project="$PROJECT_ID"
  fi
}

# The table, its app profiles, then the instance, unless another table lives in it.
teardown_bigtable() {
  local target=(--instance="$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT") profile
  if exists gcloud bigtable instances tables describe "$BIGTABLE_TABLE" "${target[@]}"; then
    run gcloud bigtable instances tables delete "$BIGTABLE_TABLE" "${target[@]}" --quiet
  fi
  for profile in "$BIGTABLE_APP_PROFILE" "$BIGTABLE_SYNC_APP_PROFILE"; do
    if exists gcloud bigtable app-profiles describe "$profile" "${target[@]}"; then
      run gcloud bigtable app-profiles delete "$profile" "${target[@]}" --force --quiet
    fi
  done
  exists gcloud bigtable instances describe "$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" ||
    [[ $DRY_RUN == 1 ]] || return 0
  local file=$WORK_DIR/bigtable-tables
  if read_to "$file" gcloud bigtable instances tables list --instances="$BIGTABLE_INSTANCE" \
    --project="$BIGTABLE_PROJECT" --format='value(name.basename())' || [[ $DRY_RUN == 1 ]]; then
    if [[ -s $file ]]; then
      echo "deploy.sh: note: Bigtable instance $BIGTABLE_INSTANCE still holds other tables ($(paste -sd, "$file")): kept" >&2
    else
      run gcloud bigtable instances delete "$BIGTABLE_INSTANCE" --project="$BIGTABLE_PROJECT" --quiet
    fi
  else
    echo "deploy.sh: note: could not list the tables of Bigtable instance $BIGTABLE_INSTANCE: kept" >&2
  fi
}

teardown() {
  local job fn region
  # Alerts first: nothing pages while the rest goes.
  if [[ $MONITORING == on ]]; then teardown_monitoring; fi
  if [[ $EDGE == lb ]]; then
    teardown_edge
  elif exists gcloud compute forwarding-rules describe "$EDGE_HTTPS_RULE" --global --project="$PROJECT_ID"; then
    echo "deploy.sh: note: a load balancer ($EDGE_HTTPS_RULE) exists: to remove it too, run teardown with EDGE=lb and the REGIONS and DOMAIN it was deployed with" >&2
  fi
  # Every mapping store's job: a switch of MAPPING_STORE may have left the other one.
  for job in "${NAME_PREFIX}-snapshot-catalog" "${NAME_PREFIX}-snapshot-mapping" "$SYNC_FN"; do
    if exists gcloud scheduler jobs describe "$job" --project="$PROJECT_ID" --location="$REGION"; then
      run gcloud scheduler jobs delete "$job" --project="$PROJECT_ID" --location="$REGION" --quiet
    fi
  done
  for region in "${PROFILE_REGIONS[@]}"; do
    if exists gcloud functions describe "$PROFILE_FN" --gen2 --project="$PROJECT_ID" --region="$region"; then
      run gcloud functions delete "$PROFILE_FN" --gen2 --project="$PROJECT_ID" --region="$region" --quiet
    fi
  done
  teardown_sync_workers
  for fn in "$CATALOG_FN" "$MAPPING_FN" "$SYNC_FN" "$SHARD_FN"; do
    if exists gcloud functions describe "$fn" --gen2 --project="$PROJECT_ID" --region="$REGION"; then
      run gcloud functions delete "$fn" --gen2 --project="$PROJECT_ID" --region="$REGION" --quiet
    fi
  done
  if [[ ${TEARDOWN_ALL:-0} == 1 ]]; then
    if exists gcloud storage buckets describe "gs://$BUCKET" --project="$PROJECT_ID"; then
      run gcloud storage rm --recursive "gs://$BUCKET" --project="$PROJECT_ID"
    fi
    if [[ $MAPPING_STORE == bigtable ]]; then teardown_bigtable; fi
    local id
    for id in profile catalog mapping sync push scheduler build; do
      if exists gcloud iam service-accounts describe "$(sa_email "$id")" --project="$PROJECT_ID"; then
        run gcloud iam service-accounts delete "$(sa_email "$id")" --project="$PROJECT_ID" --quiet
      fi
    done
  fi
}

"$ACTION"
