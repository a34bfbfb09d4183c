#!/usr/bin/env bash
# Smoke test on a real Spark standalone cluster (issue #12): a master and two workers (1 core,
# 2 GiB each) on 127.0.0.1, the package as a wheel, and jobs/pipeline.py under spark-submit
# with the Delta Lake package. Run 1 runs the pipeline on the intact cluster; run 2 runs it
# again and kills one worker (its JVM, its executor and the executor's Python workers, with
# SIGKILL: a lost machine) while a pipeline stage has tasks running on it. Both runs must exit
# 0 with native Delta, and every table of run 2 must equal run 1's (scripts/compare_warehouses.py,
# chispa). Prints the wall time of each run and the stage the worker was lost in.
#
#   bash scripts/cluster_smoke.sh [DATA] [--set section.key=value ...]
#
# DATA (or $CLUSTER_SMOKE_DATA): a product_json file; default
# ../shared/data/transactions_product_json_sample.parquet. Options after it go to both runs
# (after the script's own, so they win). Environment:
#   KILL_STAGES   pipeline stages to kill a worker in, in pipeline order; the first that has a
#                 running task on a worker wins (default: "recommend evaluate", the stages that
#                 cut lineage with checkpoints)
#   SKIP_STAGES   pipeline stages both runs leave out (default: "report"; the test adds
#                 "evaluate" to keep CI short)
#   RUN_TIMEOUT   seconds allowed per pipeline run (default 900)
#   KEEP_TMP=1    keep the temp folder (logs, warehouses) after success; it is kept on failure
#   PYTHON        the venv's python (default .venv/bin/python; `bash scripts/test.sh --co -q`
#                 creates it)
# Every process it starts (master, workers, their executors, spark-submit, Python helpers) is
# stopped by its PID on exit, also on failure or Ctrl-C. Exit code 0 only when every check passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PY="${PYTHON:-$REPO/.venv/bin/python}"
if [ $# -gt 0 ] && [[ $1 != --* ]]; then
  DATA=$1
  shift
else
  DATA="${CLUSTER_SMOKE_DATA:-$REPO/../shared/data/transactions_product_json_sample.parquet}"
fi
EXTRA_ARGS=("$@") # more job options for both runs, e.g. --set segmentation.k=5
KILL_STAGES="${KILL_STAGES:-recommend evaluate}"
# The runs are compared table by table, and the report writes no table (tests/test_report.py).
SKIP_STAGES="${SKIP_STAGES-report}"
SKIP_ARGS=() CHECK_SKIP=()
for stage in $SKIP_STAGES; do
  SKIP_ARGS+=(--skip "$stage")
  if [ "$stage" != report ]; then CHECK_SKIP+=(--skip "$stage"); fi
done
RUN_TIMEOUT="${RUN_TIMEOUT:-900}"

say() { echo "cluster_smoke: $*"; }
fail() {
  echo "cluster_smoke: FAILED: $*" >&2
  exit 1
}

PY=$(realpath -s "$PY") # absolute, not resolved: a venv's python is a symlink
[ -x "$PY" ] || fail "no python at $PY (create .venv with: bash scripts/test.sh --co -q)"
[ -e "$DATA" ] || fail "data not found: $DATA (pass a path or set CLUSTER_SMOKE_DATA)"
DATA=$(realpath "$DATA")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cluster-smoke.XXXXXX")
mkdir -p "$TMP/logs" "$TMP/events" "$TMP/local" "$TMP/work" "$TMP/conf" "$TMP/dist" "$TMP/src"
STARTED=() # PIDs of the processes this script started (their descendants are found on exit)

running() { # a PID that exists and is not a zombie
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $state != Z* ]]
}

descendants() { # every descendant of PID $1, children first
  local child
  for child in $(pgrep -P "$1" || true); do
    echo "$child"
    descendants "$child"
  done
}

cleanup() {
  local rc=$? pid pids=() left=()
  trap - EXIT INT TERM
  for pid in "${STARTED[@]}"; do
    running "$pid" || continue
    # shellcheck disable=SC2207
    pids+=($(descendants "$pid") "$pid")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    kill -CONT "${pids[@]}" 2>/dev/null || true # a frozen executor acts on TERM once thawed
    for _ in $(seq 1 40); do
      left=()
      for pid in "${pids[@]}"; do if running "$pid"; then left+=("$pid"); fi; done
      [ ${#left[@]} -eq 0 ] && break
      sleep 0.25
    done
    if [ ${#left[@]} -gt 0 ]; then kill -KILL "${left[@]}" 2>/dev/null || true; fi
  fi
  wait 2>/dev/null || true
  if [ "$rc" -eq 0 ] && [ -z "${KEEP_TMP:-}" ]; then
    rm -rf "$TMP"
  else
    echo "cluster_smoke: logs and warehouses kept in $TMP" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # start a command in the background: start OUT ERR COMMAND...; sets LAST_PID
  local out=$1 err=$2
  shift 2
  if [ "$out" = "$err" ]; then "$@" >"$out" 2>&1 & else "$@" >"$out" 2>"$err" & fi
  LAST_PID=$!
  STARTED+=("$LAST_PID")
}

forget() { # a PID that is gone (and reaped) is no longer ours to stop: it may be reused
  local pid kept=()
  for pid in "${STARTED[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  STARTED=("${kept[@]}")
}

finish() { # wait for a background PID (interruptible by signals); returns its exit code
  local rc=0
  wait "$1" || rc=$?
  forget "$1"
  return "$rc"
}

free_ports() { # N free TCP ports on 127.0.0.1
  "$PY" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()' "$1"
}

json_get() { # GET JSON from URL $1 and print the Python expression $2 of it (`d`); "" on errors
  "$PY" -c '
import json, re, sys, urllib.request
try:
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(sys.argv[1], timeout=5) as response:
        print(eval(sys.argv[2], {"re": re, "d": json.load(response)}))
except Exception:
    pass' "$1" "$2"
}

seconds_since() { "$PY" -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$1"; }

SPARK_HOME=$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
DELTA=$("$PY" -m customer_analytics.runtime.jars show | head -n 1)
EXCLUDES=$("$PY" -c 'from customer_analytics.runtime import jars; print(",".join(jars.DELTA_EXCLUDES))')
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_LOCAL_DIRS="$TMP/local"
export SPARK_WORKER_DIR="$TMP/work" SPARK_LOG_DIR="$TMP/logs" SPARK_PID_DIR="$TMP"
export SPARK_CONF_DIR="$TMP/conf" # no spark-defaults.conf or spark-env.sh from elsewhere
export SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" # no REST server on fixed port 6066
export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY" # executors run the venv's Python

read -r MASTER_PORT MASTER_UI WORKER1_UI WORKER2_UI APP_UI <<<"$(free_ports 5)"
MASTER="spark://127.0.0.1:$MASTER_PORT"
say "temp folder $TMP; data $DATA"

# ---- the cluster: one master, two workers of 1 core and 2 GiB
log="$TMP/logs/master.log"
start "$log" "$log" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
  --host 127.0.0.1 --port "$MASTER_PORT" --webui-port "$MASTER_UI"
MASTER_PID=$LAST_PID
declare -A WORKER_PID WORKER_UI=([1]=$WORKER1_UI [2]=$WORKER2_UI)
for i in 1 2; do
  mkdir -p "$TMP/work/worker$i"
  log="$TMP/logs/worker$i.log"
  start "$log" "$log" "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
    --host 127.0.0.1 --cores 1 --memory 2g --webui-port "${WORKER_UI[$i]}" \
    --work-dir "$TMP/work/worker$i" "$MASTER"
  WORKER_PID[$i]=$LAST_PID
done
cluster_started=$(date +%s.%N)
alive_workers() {
  json_get "http://127.0.0.1:$MASTER_UI/json/" 'sum(w["state"] == "ALIVE" for w in d["workers"])'
}
while [ "$(alive_workers)" != 2 ]; do
  for pid in "$MASTER_PID" "${WORKER_PID[1]}" "${WORKER_PID[2]}"; do
    running "$pid" || fail "a cluster process ($pid) exited; see $TMP/logs/master.log, worker*.log"
  done
  (($(seconds_since "$cluster_started" | cut -d. -f1) < 180)) ||
    fail "the master did not report 2 ALIVE workers within 180 s"
  sleep 1
done
say "cluster up in $(seconds_since "$cluster_started") s: master $MASTER (pid $MASTER_PID)," \
  "2 ALIVE workers (pids ${WORKER_PID[1]}, ${WORKER_PID[2]}), 1 core and 2 GiB each"

# ---- the wheel, built from a copy of the sources (an in-tree build/ may hold stale modules)
cp -r setup.py README.md pyproject.toml lib "$TMP/src/"
find "$TMP/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
log="$TMP/logs/wheel.log"
start "$log" "$log" "$PY" -m pip wheel --no-deps -w "$TMP/dist" "$TMP/src"
finish "$LAST_PID" || fail "building the wheel failed: $(tail -n 20 "$log")"
WHEEL=$(ls "$TMP"/dist/customer_analytics-*.whl)
say "wheel $(basename "$WHEEL"); Delta package $DELTA"

SUBMIT=(
  "$SPARK_HOME/bin/spark-submit" --master "$MASTER" --name customer-analytics-cluster-smoke
  --packages "$DELTA" --conf "spark.jars.excludes=$EXCLUDES" --py-files "$WHEEL"
  --driver-memory 2g --executor-memory 1g
  --conf spark.driver.extraJavaOptions=-Xss16m --conf spark.executor.extraJavaOptions=-Xss16m
  --conf "spark.ui.port=$APP_UI"
  # the event log tells which tasks were lost with the worker
  --conf spark.eventLog.enabled=true --conf "spark.eventLog.dir=$TMP/events"
  --conf spark.eventLog.compress=false --conf spark.eventLog.rolling.enabled=false
  jobs/pipeline.py --conf conf/cluster.yaml --set "source.path=$DATA"
  # quick on 2 workers of 1 core: a fixed K (no sweep), one KMeans start, 2 partitions, Delta
  # log snapshots in 2 partitions (not 50), no locality wait, no adaptive execution (it halves
  # the evaluate stage here, whose hundreds of small joins AQE plans stage by stage)
  --set segmentation.k=4 --set segmentation.n_init=1
  --set spark.conf.spark.sql.shuffle.partitions=2 --set spark.conf.spark.default.parallelism=2
  --set spark.conf.spark.databricks.delta.snapshotPartitions=2
  --set spark.conf.spark.locality.wait=0s --set spark.conf.spark.sql.adaptive.enabled=false
  "${SKIP_ARGS[@]}"
  "${EXTRA_ARGS[@]}"
)

submit() { # start a pipeline run into warehouse $TMP/$1; sets RUN_PID and RUN_STARTED
  RUN_STARTED=$(date +%s.%N)
  start "$TMP/logs/$1.out" "$TMP/logs/$1.err" "${SUBMIT[@]}" --set "warehouse.path=$TMP/$1"
  RUN_PID=$LAST_PID
}

run_timed_out() { (($(seconds_since "$RUN_STARTED" | cut -d. -f1) >= RUN_TIMEOUT)); }

wait_run() { # wait for the run $1 (RUN_PID) to end, check it; sets RUN_SECONDS
  local name=$1 rc=0 first
  while running "$RUN_PID"; do
    run_timed_out && fail "$name: still running after $RUN_TIMEOUT s"
    sleep 0.5
  done
  finish "$RUN_PID" || rc=$?
  RUN_SECONDS=$(seconds_since "$RUN_STARTED")
  sed "s/^/  $name| /" "$TMP/logs/$name.out"
  if [ "$rc" -ne 0 ]; then
    tail -n 60 "$TMP/logs/$name.err" | sed "s/^/  $name stderr| /" >&2
    fail "$name: spark-submit exited $rc after $RUN_SECONDS s"
  fi
  first=$(head -n 1 "$TMP/logs/$name.out")
  [[ $first =~ ^\[pipeline\]\ run\ .*\(Delta\ Lake\ [0-9.]+,\ native\)$ ]] ||
    fail "$name: the job's first line does not say native Delta: $first"
  log="$TMP/logs/check-$name.log"
  start "$log" "$log" "$PY" scripts/compare_warehouses.py --check "$TMP/$name" "${CHECK_SKIP[@]}"
  finish "$LAST_PID" || fail "$name: $(cat "$log")"
  say "$name: exit 0 in $RUN_SECONDS s, native Delta; $(tail -n 1 "$log")"
}

# ---- run 1: the intact cluster
submit run1
wait_run run1
RUN1_SECONDS=$RUN_SECONDS

# ---- run 2: lose a worker (and its executor) while a stage has a task running on it
app_json() { json_get "http://127.0.0.1:$APP_UI/api/v1/applications$1" "$2"; } # path, expression
stage_line() { grep -qF "[$1] $2" "$TMP/logs/run2.out"; } # stage, "started" or "rows in"
busy_executor() { # the first executor with a running task: "<worker UI port> <id> <tasks>"
  app_json "/$APP_ID/executors" '" ".join(next((
    [re.search(r"//127\.0\.0\.1:(\d+)/", e["executorLogs"]["stderr"]).group(1), e["id"],
     str(e["activeTasks"])]
    for e in d if e["id"] != "driver" and e["isActive"] and e["activeTasks"] > 0), []))'
}
running_tasks() { # running tasks of executor $1, as the driver sees them
  app_json "/$APP_ID/executors" "next((e['activeTasks'] for e in d if e['id'] == '$1'), 0)"
}
executor_jvms() { # the executor JVMs a worker (PID $1) started
  local pid
  for pid in $(pgrep -P "$1" || true); do
    if grep -qa CoarseGrainedExecutorBackend "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; fi
  done
}

# Kill worker $1 in stage $2 if its executor ($3) has a task running: freeze the executor
# (SIGSTOP: no task of it can finish from now on), wait for status updates already sent to
# reach the driver, ask the driver again, then SIGKILL the worker, the executor and the
# executor's Python workers (a lost machine). If the task had finished, thaw and return 1.
kill_worker_if_busy() {
  local worker=$1 stage=$2 executor=$3 worker_pid=${WORKER_PID[$1]} jvms tasks pid tree
  jvms=$(executor_jvms "$worker_pid")
  [ -n "$jvms" ] || return 1
  # shellcheck disable=SC2086
  kill -STOP $jvms
  sleep 0.5
  tasks=$(running_tasks "$executor")
  if [ "${tasks:-0}" -lt 1 ] || stage_line "$stage" "rows in"; then
    # shellcheck disable=SC2086
    kill -CONT $jvms 2>/dev/null || true
    return 1
  fi
  # shellcheck disable=SC2207
  tree=($(descendants "$worker_pid"))
  # kill's exit code is not the check (a Python worker may have ended): the loop below is
  kill -KILL "$worker_pid" "${tree[@]}" 2>/dev/null || true
  KILL_LINE=$(wc -l <"$TMP/logs/run2.out")
  KILL_SECONDS=$(seconds_since "$RUN_STARTED")
  finish "$worker_pid" || true
  for pid in "${tree[@]}"; do
    for _ in $(seq 1 20); do running "$pid" || break; sleep 0.25; done
    if running "$pid"; then fail "process $pid of the killed worker is still running"; fi
  done
  say "killed worker $worker (pid $worker_pid), its executor $executor (pid" \
    "${jvms//$'\n'/ }) and the ${#tree[@]} process(es) under the worker with SIGKILL," \
    "$KILL_SECONDS s into run2, in stage $stage, with $tasks task(s) running on that executor"
}

submit run2
KILLED_STAGE="" APP_ID=""
for stage in $KILL_STAGES; do
  until stage_line "$stage" started; do
    running "$RUN_PID" || break 2
    run_timed_out && fail "run2: still running after $RUN_TIMEOUT s"
    sleep 0.2
  done
  while running "$RUN_PID" && ! stage_line "$stage" "rows in"; do
    run_timed_out && fail "run2: still running after $RUN_TIMEOUT s"
    [ -n "$APP_ID" ] || APP_ID=$(app_json "" 'd[0]["id"] if d else ""')
    busy=$(busy_executor)
    if [ -n "$busy" ]; then
      read -r busy_ui executor _ <<<"$busy"
      for i in 1 2; do
        if [ "${WORKER_UI[$i]}" = "$busy_ui" ] && kill_worker_if_busy "$i" "$stage" "$executor"
        then
          VICTIM=$i EXECUTOR_ID=$executor KILLED_STAGE=$stage
          break 3
        fi
      done
    fi
    sleep 0.2
  done
done
if [ -z "$KILLED_STAGE" ]; then
  wait_run run2 # a run that failed says so first
  fail "run2: no task of the stages '$KILL_STAGES' was seen running on a worker: none killed"
fi
wait_run run2
RUN2_SECONDS=$RUN_SECONDS
# the stage ended after the kill: the worker was lost mid-stage
tail -n +"$((KILL_LINE + 1))" "$TMP/logs/run2.out" | grep -qF "[$KILLED_STAGE] rows in" ||
  fail "run2: stage $KILLED_STAGE had ended before the kill"
grep -q "Lost executor $EXECUTOR_ID" "$TMP/logs/run2.err" ||
  fail "run2: the driver did not report losing executor $EXECUTOR_ID"
task_ends() { # event log, executor id: "<successful tasks> <tasks lost with that executor>"
  "$PY" -c '
import json, sys
ok = lost = 0
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        if "\"SparkListenerTaskEnd\"" in line:
            reason = json.loads(line)["Task End Reason"]
            ok += reason["Reason"] == "Success"
            lost += reason["Reason"] == "ExecutorLostFailure" and reason["Executor ID"] == sys.argv[2]
print(ok, lost)' "$1" "$2"
}
for event_log in "$TMP"/events/app-*; do
  if [ "$(basename "$event_log")" != "$APP_ID" ]; then RUN1_EVENTS=$event_log; fi
done
read -r run1_tasks _ <<<"$(task_ends "$RUN1_EVENTS" none)"
read -r run2_tasks LOST_TASKS <<<"$(task_ends "$TMP/events/$APP_ID" "$EXECUTOR_ID")"
[ "$LOST_TASKS" -ge 1 ] || fail "run2: the event log shows no task lost with executor $EXECUTOR_ID"
say "run2: the driver lost executor $EXECUTOR_ID with $LOST_TASKS running task(s)" \
  "(ExecutorLostFailure, retried); $run2_tasks tasks succeeded (run1: $run1_tasks);" \
  "stage $KILLED_STAGE finished on the remaining worker; the master reports" \
  "$(alive_workers) ALIVE worker(s)"

# ---- run 2's tables equal run 1's
log="$TMP/logs/compare"
start "$log.out" "$log.err" "$PY" scripts/compare_warehouses.py "$TMP/run1" "$TMP/run2"
finish "$LAST_PID" || {
  sed 's/^/  compare| /' "$log.out"
  grep -v '^\s*$' "$log.err" | tail -n 60 >&2
  fail "run2's tables differ from run1's"
}
sed 's/^/  compare| /' "$log.out"

say "RESULT run1 (2 workers): ${RUN1_SECONDS} s"
say "RESULT run2 (worker $VICTIM killed in stage $KILLED_STAGE): ${RUN2_SECONDS} s"
say "RESULT worker killed mid-stage: $KILLED_STAGE"
say "RESULT $(tail -n 1 "$log.out")"
say "PASSED"
