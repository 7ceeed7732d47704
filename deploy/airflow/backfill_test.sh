#!/usr/bin/env bash
# `make airflow-test`: a real two-day backfill of mutuals_daily on SQLite, run by a real scheduler, then the
# same backfill again (every run cleared and re-run), showing the re-run changes no row of any table.
#
# Airflow 3 has no in-process backfill: `airflow backfill create` records the runs and the scheduler runs
# them, its LocalExecutor's task processes reporting to the API server's execution API. So this starts an
# API server (on a free loopback port) and a scheduler, each in its own process group, and stops both on
# exit, failed or not. The scheduler does not create the DAG's own cron runs (use_job_schedule off):
# only the backfill runs. The DAG files are serialized with `airflow dags reserialize` (no DAG processor).
# Expects the Makefile's environment (AIRFLOW_HOME, the spark_default connection, PATH with the venv).
set -euo pipefail

LAKE=${AIRFLOW_LAKE:?}
FROM=${AIRFLOW_FROM:-2026-01-01}
TO=${AIRFLOW_TO:-2026-01-02}
MEMBERS=${AIRFLOW_MEMBERS:-300}
DAG=mutuals_daily
HERE=$(cd "$(dirname "$0")" && pwd)
LOGS=$AIRFLOW_HOME/backfill-test
mkdir -p "$LOGS"
# A metadata database of its own, made afresh: a run that was killed half-way leaves its backfill "running"
# in the database, and Airflow allows one running backfill per DAG.
rm -f "$LOGS/airflow.db"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$LOGS/airflow.db

free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$(free_port)
export MUTUALS_LAKE=$LAKE
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM=2
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__WORKERS=1
export AIRFLOW__API_AUTH__JWT_SECRET=${AIRFLOW__API_AUTH__JWT_SECRET:-$(python -c 'import secrets; print(secrets.token_hex(32))')}

echo "== lake $LAKE: $MEMBERS members, days $FROM..$TO"
rm -rf "$LAKE"
mutuals generate --lake "$LAKE" --start "$FROM" --days 2 --members "$MEMBERS" --seed 7 >/dev/null

airflow db migrate >/dev/null
POOL=$(python -c 'import os; from mutuals.pipeline import pool_name; print(pool_name(os.environ["MUTUALS_LAKE"]))')
airflow pools set "$POOL" 2 "mutuals: Spark jobs writing $LAKE" >/dev/null
echo "== pool $POOL (2 slots)"
airflow dags reserialize >/dev/null 2>&1
airflow dags list-import-errors --local -o plain
airflow dags unpause "$DAG" >/dev/null

# SQLite has one writer at a time and the running scheduler is often it: the CLI's write can then fail with
# "database is locked" after SQLite's busy timeout. The create is one transaction, so trying again is safe.
create_backfill() {
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if airflow backfill create --dag-id "$DAG" --from-date "$FROM" --to-date "$TO" --max-active-runs 1 \
        --reprocess-behavior completed >"$LOGS/backfill-create.log" 2>&1; then
      return 0
    fi
    grep -q "database is locked" "$LOGS/backfill-create.log" || { tail -20 "$LOGS/backfill-create.log"; return 1; }
    echo "   backfill create: database is locked (attempt $attempt), trying again"
    sleep 5
  done
  tail -20 "$LOGS/backfill-create.log"
  return 1
}

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 3
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
setsid airflow api-server --port "$PORT" --host 127.0.0.1 >"$LOGS/api-server.log" 2>&1 &
PIDS+=($!)
setsid airflow scheduler >"$LOGS/scheduler.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
  sleep 2
done
curl -fs "http://127.0.0.1:$PORT/api/v2/monitor/health" >/dev/null || { tail -50 "$LOGS/api-server.log"; exit 1; }
echo "== api-server on 127.0.0.1:$PORT, scheduler running"

started=$(date +%s)
create_backfill
{ python "$HERE/wait_backfill.py" --dag-id "$DAG" || true; } | tail -1 > "$LOGS/first.json"
python -c 'import json,sys; r=json.load(open(sys.argv[1])); print("first backfill:", {x["logical_date"][:10]: x["state"] for x in r["runs"]}); sys.exit(0 if all(x["state"]=="success" for x in r["runs"]) else 1)' "$LOGS/first.json" \
  || { cat "$LOGS/first.json"; exit 1; }
echo "   took $(( $(date +%s) - started )) s"
python "$HERE/lake_fingerprint.py" "$LAKE" > "$LOGS/fingerprint-before.json"

started=$(date +%s)
create_backfill
{ python "$HERE/wait_backfill.py" --dag-id "$DAG" || true; } | tail -1 > "$LOGS/second.json"
python -c 'import json,sys; r=json.load(open(sys.argv[1])); print("re-run backfill:", {x["logical_date"][:10]: x["state"] for x in r["runs"]}); sys.exit(0 if all(x["state"]=="success" for x in r["runs"]) else 1)' "$LOGS/second.json" \
  || { cat "$LOGS/second.json"; exit 1; }
echo "   took $(( $(date +%s) - started )) s"
echo "== the re-run against the first run's data (exit 1 if any table's rows changed):"
python "$HERE/lake_fingerprint.py" "$LAKE" --compare "$LOGS/fingerprint-before.json"
