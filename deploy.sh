#!/usr/bin/env bash
# Deploys the Profile API to a Google Cloud project: APIs, the snapshot bucket with its
# retention rule, least-privilege service accounts, the three Cloud Run functions (gen2,
# nodejs24) and the two Cloud Scheduler jobs. Idempotent: creates what is missing and updates
# what exists, so a re-run is the update path.
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

usage() {
  cat <<EOF
Usage: ./deploy.sh [deploy|verify|teardown] [--dry-run] [--help]
       ./deploy.sh rollback catalog|mapping VERSION [--dry-run]

Commands:
  deploy (default)           create or update everything
  verify                     check the mapping query against the real MAPPING_TABLE with a
                             BigQuery dry run (free): locally, then through the deployed mapping
                             job when it exists. Needs only PROJECT_ID and MAPPING_TABLE.
  rollback KIND VERSION      pause KIND's scheduler job, then have the job republish VERSION
                             (e.g. 20261130T043000Z-1a2b3c4d, from gs://BUCKET/SNAPSHOT_PREFIX/KIND/)
                             as a new version; prints how to resume the job. Needs PROJECT_ID.
  teardown                   delete the functions and scheduler jobs (TEARDOWN_ALL=1: also the
                             bucket and the service accounts)

Required:
  PROJECT_ID                 Google Cloud project to deploy to
  AEROSPIKE_HOSTS            Aerospike seeds, host[:port][,host[:port]...]
  MONGO_DATABASE             database holding the segment collection
  MAPPING_TABLE              BigQuery identity mapping, project.dataset.table

Settings (default):
  REGION                     europe-west1
  NAME_PREFIX                profile-api (functions, service accounts, scheduler jobs)
  BUCKET                     <PROJECT_ID>-profile-api-snapshots
  BUCKET_LOCATION            <REGION>
  SNAPSHOT_PREFIX            profile-api (folder inside the bucket; each job may write only its
                             own <SNAPSHOT_PREFIX>/<kind>/, the profile function only reads)
  SNAPSHOT_RETENTION_DAYS    30 (superseded snapshot versions are deleted after this)
  RUNTIME                    nodejs24
  VPC_CONNECTOR              unset (Serverless VPC Access connector to reach a private Aerospike)
  VPC_EGRESS                 private-ranges-only
  MAPPING_IDS                10000000 (ids expected in the identity mapping; sizes the profile
                             function)
  PROFILE_MEMORY             the smallest Cloud Run size (${MEMORY_SIZES[*]}) of
                             at least ${PROFILE_BASE_MIB} MiB + MAPPING_IDS * ${REFRESH_BYTES_PER_ID} B, as a refresh holds the
                             old and the new mapping at once: $(smallest_memory "$(needed_mib 10000000)") for 10 million ids.
                             Set below that, it warns, and MAPPING_MAX_BYTES follows it.
  PROFILE_CPU                Cloud Run's minimum for PROFILE_MEMORY: 1; above 4Gi 2, above 8Gi 4,
                             above 16Gi 6, above 24Gi 8
  MAPPING_MAX_BYTES          (PROFILE_MEMORY - ${PROFILE_BASE_MIB} MiB) * ${INDEX_BYTES_PER_ID} / ${REFRESH_BYTES_PER_ID} bytes, rounded down:
                             the largest mapping index a profile instance loads (${INDEX_BYTES_PER_ID} B per id
                             loaded, ${REFRESH_BYTES_PER_ID} B per id during a refresh); the mapping job
                             refuses to publish a bigger one. The figures are measured ones,
                             at the top of deploy.sh.
  PROFILE_CPU_ALWAYS_ALLOCATED  false (true: no CPU throttling outside requests, so background
                             snapshot refreshes run at full speed, at the price of billing each
                             instance for its whole lifetime. Back to false changes nothing on
                             the service: gcloud run services update NAME --cpu-throttling)
  PROFILE_MIN_INSTANCES      1
  PROFILE_MAX_INSTANCES      20
  PROFILE_CONCURRENCY        80
  PROFILE_TIMEOUT            60s
  PROFILE_INGRESS            all (or internal, internal-and-gclb)
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
  MONGO_COLLECTION           segments
  AEROSPIKE_NAMESPACE        profiles
  AEROSPIKE_USER             unset; with AEROSPIKE_PASSWORD_SECRET (a Secret Manager secret)
  API_KEYS_SECRET            unset (Secret Manager secret holding the profile API keys)
  BIGQUERY_PROJECT           <PROJECT_ID> (runs and pays for the mapping query)
  BIGQUERY_LOCATION          unset
  GOOGLE_OAUTH_ACCESS_TOKEN  verify only: token for BigQuery (default: gcloud auth
                             print-access-token); with BIGQUERY_EMULATOR_HOST, verify runs
                             against that server and calls no gcloud
  DRY_RUN                    0
  Any of the functions' own variables (LINKED_IDS_MAX, REQUEST_BUDGET_MS, ID_TYPES_JSON,
  LOG_LEVEL, CATALOG_FIELDS, MAPPING_*_COLUMN, MAPPING_WINDOW_DAYS, ...) set here is passed on
  to them.
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
  deploy | verify | teardown)
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

DRY_RUN=${DRY_RUN:-0}
REGION=${REGION:-europe-west1}
NAME_PREFIX=${NAME_PREFIX:-profile-api}
RUNTIME=${RUNTIME:-nodejs24}
SNAPSHOT_PREFIX=${SNAPSHOT_PREFIX:-profile-api}
SNAPSHOT_RETENTION_DAYS=${SNAPSHOT_RETENTION_DAYS:-30}
VPC_CONNECTOR=${VPC_CONNECTOR:-}
VPC_EGRESS=${VPC_EGRESS:-private-ranges-only}
MAPPING_IDS=${MAPPING_IDS:-10000000}
# Unset: sized from MAPPING_IDS by size_profile.
PROFILE_MEMORY=${PROFILE_MEMORY:-}
PROFILE_CPU=${PROFILE_CPU:-}
MAPPING_MAX_BYTES=${MAPPING_MAX_BYTES:-}
PROFILE_CPU_ALWAYS_ALLOCATED=${PROFILE_CPU_ALWAYS_ALLOCATED:-false}
PROFILE_MIN_INSTANCES=${PROFILE_MIN_INSTANCES:-1}
PROFILE_MAX_INSTANCES=${PROFILE_MAX_INSTANCES:-20}
PROFILE_CONCURRENCY=${PROFILE_CONCURRENCY:-80}
PROFILE_TIMEOUT=${PROFILE_TIMEOUT:-60s}
PROFILE_INGRESS=${PROFILE_INGRESS:-all}
PROFILE_ALLOW_UNAUTHENTICATED=${PROFILE_ALLOW_UNAUTHENTICATED:-false}
PROFILE_INVOKERS=${PROFILE_INVOKERS:-}
JOB_MEMORY=${JOB_MEMORY:-1Gi}
JOB_CPU=${JOB_CPU:-1}
JOB_TIMEOUT=${JOB_TIMEOUT:-1800s}
CATALOG_SCHEDULE=${CATALOG_SCHEDULE:-0 * * * *}
MAPPING_SCHEDULE=${MAPPING_SCHEDULE:-30 4 * * *}
SCHEDULER_TIME_ZONE=${SCHEDULER_TIME_ZONE:-Etc/UTC}
MONGO_URI_SECRET=${MONGO_URI_SECRET:-profile-api-mongo-uri}
MONGO_COLLECTION=${MONGO_COLLECTION:-segments}
AEROSPIKE_NAMESPACE=${AEROSPIKE_NAMESPACE:-profiles}
AEROSPIKE_USER=${AEROSPIKE_USER:-}
AEROSPIKE_PASSWORD_SECRET=${AEROSPIKE_PASSWORD_SECRET:-}
API_KEYS_SECRET=${API_KEYS_SECRET:-}
BIGQUERY_LOCATION=${BIGQUERY_LOCATION:-}

[[ -n ${PROJECT_ID:-} ]] || die "PROJECT_ID is required (see --help)"
BUCKET=${BUCKET:-${PROJECT_ID}-profile-api-snapshots}
BUCKET_LOCATION=${BUCKET_LOCATION:-$REGION}
BIGQUERY_PROJECT=${BIGQUERY_PROJECT:-$PROJECT_ID}
SNAPSHOT_URI="gs://${BUCKET}/${SNAPSHOT_PREFIX}"

PROFILE_FN=${NAME_PREFIX}
CATALOG_FN=${NAME_PREFIX}-snapshot-catalog
MAPPING_FN=${NAME_PREFIX}-snapshot-mapping
sa_email() { echo "${NAME_PREFIX}-$1@${PROJECT_ID}.iam.gserviceaccount.com"; }
PROFILE_SA=$(sa_email profile)
CATALOG_SA=$(sa_email catalog)
MAPPING_SA=$(sa_email mapping)
SCHEDULER_SA=$(sa_email scheduler)

WORK_DIR=${DEPLOY_WORK_DIR:-$(mktemp -d)}
mkdir -p "$WORK_DIR"
if [[ -z ${DEPLOY_WORK_DIR:-} && $DRY_RUN != 1 ]]; then
  trap 'rm -rf "$WORK_DIR"' EXIT
fi

# Prints a command, then runs it unless DRY_RUN=1.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ $DRY_RUN != 1 ]]; then "$@"; fi
}

# True when a describe-style command succeeds. A dry run checks nothing and plans a first deploy.
exists() {
  if [[ $DRY_RUN == 1 ]]; then
    printf '# would check:'
    printf ' %q' "$@"
    printf '\n'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# $1 as the inside of a JSON string (our values hold no control characters).
json_chars() {
  local value=${1//\\/\\\\}
  printf '%s' "${value//\"/\\\"}"
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

COMMON_VARS=(SNAPSHOT_TIMEOUT_MS ID_TYPES_JSON LOG_LEVEL LOG_USER_IDS)
PROFILE_VARS=(LINKED_IDS_MAX MAX_ID_LENGTH SEGMENTS_BIN REFRESH_INTERVAL_SECS REFRESH_RETRY_MAX_SECS
  MAX_STALENESS_SECS FIRST_LOAD_TIMEOUT_MS REQUEST_BUDGET_MS RETRY_AFTER_SECS
  AEROSPIKE_CONNECT_TIMEOUT_MS AEROSPIKE_SOCKET_TIMEOUT_MS AEROSPIKE_TOTAL_TIMEOUT_MS
  AEROSPIKE_MAX_RETRIES)
JOB_VARS=(MIN_ROWS_RATIO)
CATALOG_VARS=(CATALOG_ID_FIELD CATALOG_FIELDS MONGO_BATCH_SIZE MONGO_MAX_TIME_MS
  MONGO_CONNECT_TIMEOUT_MS)
MAPPING_VARS=(MAPPING_PERSON_COLUMN MAPPING_ID_COLUMN MAPPING_TYPE_COLUMN MAPPING_PARTITION_COLUMN
  MAPPING_LOOKBACK_DAYS MAPPING_WINDOW_DAYS BIGQUERY_PAGE_SIZE)

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

# The job's own deadline stays inside the function timeout, so that it fails cleanly first.
job_timeout_ms() {
  local secs=${JOB_TIMEOUT%s}
  echo $(((secs - 60) * 1000))
}

write_env_files() {
  {
    env_line SNAPSHOT_URI "$SNAPSHOT_URI"
    env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
    env_line PROFILE_STORE aerospike
    # functions-framework answers /favicon.ico and /robots.txt itself (empty 404) unless told not to.
    env_line IGNORED_ROUTES ''
    env_line AEROSPIKE_HOSTS "$AEROSPIKE_HOSTS"
    env_line AEROSPIKE_NAMESPACE "$AEROSPIKE_NAMESPACE"
    if [[ -n $AEROSPIKE_USER ]]; then env_line AEROSPIKE_USER "$AEROSPIKE_USER"; fi
    env_line MAPPING_MAX_BYTES "$MAPPING_MAX_BYTES"
    pass_through "${COMMON_VARS[@]}" "${PROFILE_VARS[@]}"
  } >"$WORK_DIR/profile.env.yaml"
  {
    env_line SNAPSHOT_URI "$SNAPSHOT_URI"
    env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
    env_line MONGO_DATABASE "$MONGO_DATABASE"
    env_line MONGO_COLLECTION "$MONGO_COLLECTION"
    env_line JOB_TIMEOUT_MS "$(job_timeout_ms)"
    pass_through "${COMMON_VARS[@]}" "${JOB_VARS[@]}" "${CATALOG_VARS[@]}"
  } >"$WORK_DIR/catalog.env.yaml"
  {
    env_line SNAPSHOT_URI "$SNAPSHOT_URI"
    env_line GOOGLE_CLOUD_PROJECT "$PROJECT_ID"
    env_line MAPPING_TABLE "$MAPPING_TABLE"
    env_line BIGQUERY_PROJECT "$BIGQUERY_PROJECT"
    if [[ -n $BIGQUERY_LOCATION ]]; then env_line BIGQUERY_LOCATION "$BIGQUERY_LOCATION"; fi
    env_line JOB_TIMEOUT_MS "$(job_timeout_ms)"
    env_line MAPPING_MAX_BYTES "$MAPPING_MAX_BYTES"
    pass_through "${COMMON_VARS[@]}" "${JOB_VARS[@]}" "${MAPPING_VARS[@]}"
  } >"$WORK_DIR/mapping.env.yaml"
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
  if [[ -n $VPC_CONNECTOR ]]; then apis+=(vpcaccess.googleapis.com); fi
  run gcloud services enable "${apis[@]}" --project="$PROJECT_ID"
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
  fi
  run gcloud storage buckets update "gs://$BUCKET" --project="$PROJECT_ID" \
    --lifecycle-file="$WORK_DIR/lifecycle.json"
}

ensure_service_account() {
  local id=$1 description=$2
  if ! exists gcloud iam service-accounts describe "$(sa_email "$id")" --project="$PROJECT_ID"; then
    run gcloud iam service-accounts create "${NAME_PREFIX}-$id" --project="$PROJECT_ID" \
      --display-name="$description"
  fi
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
  echo "+ gcloud secrets create $name --data-file=- --replication-policy=automatic --project=$PROJECT_ID  # value from \$$value_var on stdin"
  if [[ $DRY_RUN != 1 ]]; then
    printf %s "${!value_var}" | gcloud secrets create "$name" --data-file=- \
      --replication-policy=automatic --project="$PROJECT_ID"
  fi
}

grant_secret() {
  run gcloud secrets add-iam-policy-binding "$1" --project="$PROJECT_ID" \
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
    printf '# would read:'
    printf ' %q' "${get[@]}"
    printf '\n'
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
    run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" --project="$PROJECT_ID" \
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
  write_condition "$WORK_DIR/mapping.condition.json" "${NAME_PREFIX} mapping snapshots" \
    "${SNAPSHOT_PREFIX}/mapping/"
  read_bucket_policy
  grant_bucket_role "$PROFILE_SA" roles/storage.objectViewer "$WORK_DIR/profile.condition.json"
  grant_bucket_role "$CATALOG_SA" roles/storage.objectUser "$WORK_DIR/catalog.condition.json"
  grant_bucket_role "$MAPPING_SA" roles/storage.objectUser "$WORK_DIR/mapping.condition.json"
  grant_secret "$MONGO_URI_SECRET" "$CATALOG_SA"
  if [[ -n $AEROSPIKE_PASSWORD_SECRET ]]; then grant_secret "$AEROSPIKE_PASSWORD_SECRET" "$PROFILE_SA"; fi
  if [[ -n $API_KEYS_SECRET ]]; then grant_secret "$API_KEYS_SECRET" "$PROFILE_SA"; fi
  # BigQuery: run jobs in the billing project, read the one mapping table.
  run gcloud projects add-iam-policy-binding "$BIGQUERY_PROJECT" --condition=None \
    --member="serviceAccount:$MAPPING_SA" --role=roles/bigquery.jobUser
  local table_project=${MAPPING_TABLE%%.*} rest=${MAPPING_TABLE#*.}
  run bq add-iam-policy-binding --project_id="$table_project" \
    --member="serviceAccount:$MAPPING_SA" --role=roles/bigquery.dataViewer --table=true \
    "${table_project}:${rest}"
}

deploy_function() {
  local name=$1 entry=$2 sa=$3 env_file=$4
  shift 4
  run gcloud functions deploy "$name" --gen2 --project="$PROJECT_ID" --region="$REGION" \
    --runtime="$RUNTIME" --source="$WORK_DIR/source" --entry-point="$entry" --trigger-http \
    --run-service-account="$sa" --env-vars-file="$env_file" "$@"
}

deploy_functions() {
  local profile_flags=(--memory="$PROFILE_MEMORY" --cpu="$PROFILE_CPU"
    --min-instances="$PROFILE_MIN_INSTANCES" --max-instances="$PROFILE_MAX_INSTANCES"
    --concurrency="$PROFILE_CONCURRENCY" --timeout="$PROFILE_TIMEOUT"
    --ingress-settings="$PROFILE_INGRESS")
  if [[ -n $VPC_CONNECTOR ]]; then
    profile_flags+=(--vpc-connector="$VPC_CONNECTOR" --egress-settings="$VPC_EGRESS")
  else
    echo "deploy.sh: VPC_CONNECTOR is not set: the profile function reaches Aerospike over the public internet" >&2
  fi
  local secrets=()
  if [[ -n $AEROSPIKE_PASSWORD_SECRET ]]; then secrets+=("AEROSPIKE_PASSWORD=${AEROSPIKE_PASSWORD_SECRET}:latest"); fi
  if [[ -n $API_KEYS_SECRET ]]; then secrets+=("API_KEYS=${API_KEYS_SECRET}:latest"); fi
  if ((${#secrets[@]})); then
    profile_flags+=(--set-secrets="$(IFS=,; echo "${secrets[*]}")")
  fi
  if [[ $PROFILE_ALLOW_UNAUTHENTICATED == true ]]; then
    profile_flags+=(--allow-unauthenticated)
  else
    profile_flags+=(--no-allow-unauthenticated)
  fi
  deploy_function "$PROFILE_FN" profile "$PROFILE_SA" "$WORK_DIR/profile.env.yaml" "${profile_flags[@]}"
  # Set on the function's Cloud Run service, which later function deploys leave as it is.
  if [[ $PROFILE_CPU_ALWAYS_ALLOCATED == true ]]; then
    run gcloud run services update "$PROFILE_FN" --project="$PROJECT_ID" --region="$REGION" \
      --no-cpu-throttling
  fi

  # One run at a time, long enough for the job, never public.
  local job_flags=(--memory="$JOB_MEMORY" --cpu="$JOB_CPU" --timeout="$JOB_TIMEOUT"
    --min-instances=0 --max-instances=1 --concurrency=1 --no-allow-unauthenticated)
  deploy_function "$CATALOG_FN" snapshotCatalog "$CATALOG_SA" "$WORK_DIR/catalog.env.yaml" \
    "${job_flags[@]}" --set-secrets="MONGO_URI=${MONGO_URI_SECRET}:latest"
  deploy_function "$MAPPING_FN" snapshotMapping "$MAPPING_SA" "$WORK_DIR/mapping.env.yaml" \
    "${job_flags[@]}"

  local fn
  for fn in "$CATALOG_FN" "$MAPPING_FN"; do
    run gcloud functions add-invoker-policy-binding "$fn" --project="$PROJECT_ID" \
      --region="$REGION" --member="serviceAccount:$SCHEDULER_SA"
  done
  if [[ -n $PROFILE_INVOKERS ]]; then
    local member members
    IFS=, read -r -a members <<<"$PROFILE_INVOKERS"
    for member in "${members[@]}"; do
      run gcloud functions add-invoker-policy-binding "$PROFILE_FN" --project="$PROJECT_ID" \
        --region="$REGION" --member="$member"
    done
  fi
}

function_url() {
  if [[ $DRY_RUN == 1 ]]; then
    echo "https://$1-PROJECT_HASH.${REGION}.run.app"
    return
  fi
  gcloud functions describe "$1" --gen2 --project="$PROJECT_ID" --region="$REGION" \
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
    run gcloud scheduler jobs update http "$job" "${common[@]}" \
      --update-headers=Content-Type=application/json
  else
    run gcloud scheduler jobs create http "$job" "${common[@]}" \
      --headers=Content-Type=application/json
  fi
}

require_mapping_table() {
  [[ -n ${MAPPING_TABLE:-} ]] || die "MAPPING_TABLE is required (see --help)"
  [[ $MAPPING_TABLE =~ ^[a-z][a-z0-9-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$ ]] ||
    die "MAPPING_TABLE must be project.dataset.table"
}

deploy() {
  [[ -n ${AEROSPIKE_HOSTS:-} ]] || die "AEROSPIKE_HOSTS is required (see --help)"
  [[ -n ${MONGO_DATABASE:-} ]] || die "MONGO_DATABASE is required (see --help)"
  require_mapping_table
  [[ $JOB_TIMEOUT =~ ^[0-9]+s$ ]] || die "JOB_TIMEOUT must be seconds, e.g. 1800s"
  # It goes into IAM conditions and the retention rule as it is.
  [[ $SNAPSHOT_PREFIX =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ ]] ||
    die "SNAPSHOT_PREFIX must be folder names joined by /, without a leading or trailing /"
  [[ $PROFILE_CPU_ALWAYS_ALLOCATED == true || $PROFILE_CPU_ALWAYS_ALLOCATED == false ]] ||
    die "PROFILE_CPU_ALWAYS_ALLOCATED must be true or false"

  size_profile
  write_env_files
  stage_source
  enable_apis
  ensure_bucket
  ensure_service_account profile "Profile API: profile function"
  ensure_service_account catalog "Profile API: catalog snapshot job"
  ensure_service_account mapping "Profile API: mapping snapshot job"
  ensure_service_account scheduler "Profile API: Cloud Scheduler caller"
  ensure_secret "$MONGO_URI_SECRET" MONGO_URI
  grant_access
  deploy_functions
  ensure_scheduler_job "${NAME_PREFIX}-snapshot-catalog" "$CATALOG_FN" "$CATALOG_SCHEDULE"
  ensure_scheduler_job "${NAME_PREFIX}-snapshot-mapping" "$MAPPING_FN" "$MAPPING_SCHEDULE"

  local url
  url=$(function_url "$PROFILE_FN")
  cat <<EOF

Deployed. Profile function: $url
Snapshots: $SNAPSHOT_URI. The scheduler runs the jobs; to publish now:
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-catalog --location=$REGION --project=$PROJECT_ID
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-mapping --location=$REGION --project=$PROJECT_ID
Check the mapping query against the real table before its first run (same settings):
  ./deploy.sh verify
Try:
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/health'
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/?id=<user id>'
EOF
}

# Checks the mapping query against the real table with a BigQuery dry run (free): the compiled
# job code locally, then the deployed job when there is one.
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
  elif exists gcloud functions describe "$MAPPING_FN" --gen2 --project="$PROJECT_ID" \
    --region="$REGION" || [[ $DRY_RUN == 1 ]]; then
    run gcloud functions call "$MAPPING_FN" --gen2 --project="$PROJECT_ID" --region="$REGION" \
      --data='{"dryRun":true}' ||
      die "the deployed $MAPPING_FN failed its dry run (above; details in its log): deploy again, or fix its settings"
  else
    echo "# $MAPPING_FN is not deployed: checked the local code only"
  fi
  echo "Verified: the mapping query is valid against $MAPPING_TABLE."
}

# Pauses KIND's scheduler job, so that its next run does not publish over the rollback, then has
# the job republish VERSION as a new object and manifest: the retention rule counts from when a
# version was superseded, so an old object named by the current manifest could otherwise go.
rollback() {
  local kind=$ROLLBACK_KIND version=$ROLLBACK_VERSION
  # The scheduler job has its function's name.
  local job=${NAME_PREFIX}-snapshot-$kind
  local resume="gcloud scheduler jobs resume $job --project=$PROJECT_ID --location=$REGION"
  # Pausing a paused job fails, and a rollback may follow another one.
  local describe=(gcloud scheduler jobs describe "$job" --project="$PROJECT_ID" --location="$REGION"
    --format='value(state)') state=''
  if [[ $DRY_RUN == 1 ]]; then
    printf '# would check:'
    printf ' %q' "${describe[@]}"
    printf '\n'
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

teardown() {
  local job fn
  for job in "${NAME_PREFIX}-snapshot-catalog" "${NAME_PREFIX}-snapshot-mapping"; do
    if exists gcloud scheduler jobs describe "$job" --project="$PROJECT_ID" --location="$REGION"; then
      run gcloud scheduler jobs delete "$job" --project="$PROJECT_ID" --location="$REGION" --quiet
    fi
  done
  for fn in "$PROFILE_FN" "$CATALOG_FN" "$MAPPING_FN"; do
    if exists gcloud functions describe "$fn" --gen2 --project="$PROJECT_ID" --region="$REGION"; then
      run gcloud functions delete "$fn" --gen2 --project="$PROJECT_ID" --region="$REGION" --quiet
    fi
  done
  if [[ ${TEARDOWN_ALL:-0} == 1 ]]; then
    if exists gcloud storage buckets describe "gs://$BUCKET" --project="$PROJECT_ID"; then
      run gcloud storage rm --recursive "gs://$BUCKET" --project="$PROJECT_ID"
    fi
    local id
    for id in profile catalog mapping scheduler; do
      if exists gcloud iam service-accounts describe "$(sa_email "$id")" --project="$PROJECT_ID"; then
        run gcloud iam service-accounts delete "$(sa_email "$id")" --project="$PROJECT_ID" --quiet
      fi
    done
  fi
}

"$ACTION"
