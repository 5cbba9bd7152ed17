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
#   ./deploy.sh teardown      delete the functions and scheduler jobs (TEARDOWN_ALL=1: also
#                             the bucket, secrets' bindings stay; service accounts go too)
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [deploy|teardown] [--dry-run] [--help]

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
  SNAPSHOT_PREFIX            profile-api (folder inside the bucket)
  SNAPSHOT_RETENTION_DAYS    30 (superseded snapshot versions are deleted after this)
  RUNTIME                    nodejs24
  VPC_CONNECTOR              unset (Serverless VPC Access connector to reach a private Aerospike)
  VPC_EGRESS                 private-ranges-only
  PROFILE_MEMORY             2Gi (holds the mapping: ~70 B per id, plus the catalog)
  PROFILE_CPU                1
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
  DRY_RUN                    0
  Any of the functions' own variables (LINKED_IDS_MAX, REQUEST_BUDGET_MS, ID_TYPES_JSON,
  LOG_LEVEL, CATALOG_FIELDS, MAPPING_*_COLUMN, ...) set here is passed on to them.
EOF
}

ACTION=deploy
for arg in "$@"; do
  case "$arg" in
    deploy | teardown) ACTION=$arg ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "deploy.sh: unknown argument: $arg (see --help)" >&2
      exit 2
      ;;
  esac
done

DRY_RUN=${DRY_RUN:-0}
REGION=${REGION:-europe-west1}
NAME_PREFIX=${NAME_PREFIX:-profile-api}
RUNTIME=${RUNTIME:-nodejs24}
SNAPSHOT_PREFIX=${SNAPSHOT_PREFIX:-profile-api}
SNAPSHOT_RETENTION_DAYS=${SNAPSHOT_RETENTION_DAYS:-30}
VPC_CONNECTOR=${VPC_CONNECTOR:-}
VPC_EGRESS=${VPC_EGRESS:-private-ranges-only}
PROFILE_MEMORY=${PROFILE_MEMORY:-2Gi}
PROFILE_CPU=${PROFILE_CPU:-1}
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

die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

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

# Writes KEY: "value" lines (YAML with JSON-quoted strings) for --env-vars-file.
env_line() {
  local value=$2
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  printf '%s: "%s"\n' "$1" "$value"
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
  MAPPING_LOOKBACK_DAYS BIGQUERY_PAGE_SIZE)

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

grant_access() {
  local bucket_member
  # The profile function only reads snapshots; the jobs write (and tidy up) their own objects.
  bucket_member=(--project="$PROJECT_ID" --condition=None)
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" "${bucket_member[@]}" \
    --member="serviceAccount:$PROFILE_SA" --role=roles/storage.objectViewer
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" "${bucket_member[@]}" \
    --member="serviceAccount:$CATALOG_SA" --role=roles/storage.objectUser
  run gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" "${bucket_member[@]}" \
    --member="serviceAccount:$MAPPING_SA" --role=roles/storage.objectUser
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

deploy() {
  [[ -n ${AEROSPIKE_HOSTS:-} ]] || die "AEROSPIKE_HOSTS is required (see --help)"
  [[ -n ${MONGO_DATABASE:-} ]] || die "MONGO_DATABASE is required (see --help)"
  [[ -n ${MAPPING_TABLE:-} ]] || die "MAPPING_TABLE is required (see --help)"
  [[ $MAPPING_TABLE =~ ^[a-z][a-z0-9-]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_$-]+$ ]] ||
    die "MAPPING_TABLE must be project.dataset.table"
  [[ $JOB_TIMEOUT =~ ^[0-9]+s$ ]] || die "JOB_TIMEOUT must be seconds, e.g. 1800s"

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
Snapshots: $SNAPSHOT_URI (the scheduler runs the jobs; to publish now:
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-catalog --location=$REGION --project=$PROJECT_ID
  gcloud scheduler jobs run ${NAME_PREFIX}-snapshot-mapping --location=$REGION --project=$PROJECT_ID)
Try:
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/health'
  curl -H "Authorization: Bearer \$(gcloud auth print-identity-token)" '$url/?id=<user id>'
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
