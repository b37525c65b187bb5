#!/usr/bin/env bash
# A real Slurm on this one machine, running experiments the way a cluster would.
#
# As root on Debian: installs slurm-wlm and munge if missing, starts munged, slurmctld and slurmd
# with a single-node configuration under a temporary folder, then checks that
#   1. `normlab slurm experiments/smoke.json`, submitted with sbatch, runs its job array and merge
#      job, and the merged results equal a single-process `normlab sweep` of the same file;
#   2. an array cancelled mid-run (SIGTERM, then SIGKILL: a preemption or a time limit) leaves
#      no torn record, and submitting it again completes the set, nothing lost or duplicated.
# Every daemon it started is stopped, by its pid file, whatever happens.
#
# Usage: Tests/slurm/run.sh   (NORMLAB=path/to/normlab to test a given build; default: builds it)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIMIT=${SLURM_TEST_TIMEOUT:-240}   # seconds to wait for a set of jobs

[ "$(id -u)" = 0 ] || { echo "Tests/slurm/run.sh runs daemons as root; run it as root" >&2; exit 2; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
if [ -z "${NORMLAB:-}" ]; then
  swift build -c release --product normlab
  NORMLAB=$ROOT/.build/release/normlab
fi

WORK=$(mktemp -d /tmp/normlab-slurm.XXXXXX)
chmod 700 "$WORK"
mkdir -p "$WORK/state" "$WORK/spool" "$WORK/log" "$WORK/munge"
stop_daemons() {
  local status=$?
  local pids=() pid
  # Read every pid first: a daemon removes its pid file as it stops.
  for pidfile in "$WORK/slurmd.pid" "$WORK/slurmctld.pid" "$WORK/munge/munged.pid"; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [ -n "$pid" ] && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$status" != 0 ]; then
    echo "--- failed; the daemons' and jobs' logs:" >&2
    tail -n 30 "$WORK"/log/* "$WORK"/out*/slurm/logs/* 2>/dev/null >&2 || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap stop_daemons EXIT

# munge: a fresh key, and the daemon's socket, pid and log files in the temporary folder.
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/munge.socket" \
  --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" --seed-file="$WORK/munge/munged.seed"

HOST=$(hostname -s)
CPUS=$(nproc)
export SLURM_CONF=$WORK/slurm.conf
cat >"$SLURM_CONF" <<CONF
ClusterName=normlab-test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURM_TEST_PORT:-6817}
SlurmdPort=$(( ${SLURM_TEST_PORT:-6817} + 1 ))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$WORK/munge/munge.socket
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName=$HOST CPUs=$CPUS State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -i
slurmd
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
  sleep 1
done
sinfo -h -o '%P %D %T %c' | grep -qE 'idle|mixed|allocated' || { echo "the Slurm node did not come up" >&2; sinfo >&2 || true; exit 1; }
echo "slurm: $(sinfo -h -o '%N %T, %c CPUs')"

# Waits until none of the given jobs is queued or running, at most LIMIT seconds.
wait_for_jobs() {
  local deadline=$((SECONDS + LIMIT))
  while [ -n "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; do
    [ $SECONDS -lt $deadline ] || { echo "jobs $1 still queued after $LIMIT s" >&2; squeue >&2; return 1; }
    sleep 1
  done
}

# Submits a folder's scripts; prints "ARRAY,MERGE".
submit() {
  local line
  line=$(sh "$1" | head -n 1)
  echo "$line" | sed -E 's/submitted job array ([0-9]+) and merge job ([0-9]+)/\1,\2/'
}

# A results file without the fields that differ between two runs of the same code (timings,
# hosts, thread counts): the rest must match record for record.
comparable() {
  sed -E 's/"(commit|finished_at)":"[^"]*",?//g; s/"(images_per_second|seconds|threads)":[^,}]*,?//g; s/,}/}/' "$1"
}

same_results() {
  if ! cmp -s <(comparable "$1") <(comparable "$2"); then
    echo "$1 and $2 differ:" >&2
    diff <(comparable "$1") <(comparable "$2") >&2 || true
    return 1
  fi
}

# 1. The smoke experiment through sbatch equals a single-process sweep.
"$NORMLAB" sweep experiments/smoke.json --out "$WORK/single" --jobs 1 --threads 1 >/dev/null
"$NORMLAB" slurm experiments/smoke.json --out "$WORK/out" --max-parallel 2 --cpus-per-task 1 --time 10:00 --partition main >/dev/null
jobs=$(submit "$WORK/out/slurm/smoke.submit.sh")
wait_for_jobs "$jobs"
[ -f "$WORK/out/smoke.md" ] || { echo "the merge job wrote no page" >&2; exit 1; }
same_results "$WORK/single/smoke.jsonl" "$WORK/out/smoke.jsonl"
echo "ok: the job array and merge job give the single-process sweep's records ($(wc -l <"$WORK/out/smoke.jsonl") runs)"

# 2. Cancelled mid-run, then submitted again. Runs long enough (seconds) to be caught running.
sed -e 's/"name": "smoke"/"name": "preempted"/' -e 's/"epochs": 1/"epochs": 3/' -e 's/"train_size": 512/"train_size": 1536/' \
  experiments/smoke.json >"$WORK/preempted.json"
"$NORMLAB" sweep "$WORK/preempted.json" --out "$WORK/single" --jobs 1 --threads 1 >/dev/null
runs=$(wc -l <"$WORK/single/preempted.jsonl")
"$NORMLAB" slurm "$WORK/preempted.json" --out "$WORK/out2" --max-parallel 1 --cpus-per-task 1 >/dev/null
jobs=$(submit "$WORK/out2/slurm/preempted.submit.sh")
deadline=$((SECONDS + LIMIT))
until ls "$WORK"/out2/tasks/preempted.*.jsonl >/dev/null 2>&1 && [ -n "$(squeue -h -j "${jobs%,*}" -t RUNNING -o %i)" ]; do
  [ $SECONDS -lt $deadline ] || { echo "no task finished while another ran" >&2; exit 1; }
  sleep 0.2
done
sleep 1
scancel "${jobs%,*}"   # SIGTERM, then SIGKILL after KillWait: as at a time limit
wait_for_jobs "$jobs"
done_before=$(ls "$WORK"/out2/tasks/preempted.*.jsonl | wc -l)
[ "$done_before" -lt "$runs" ] || { echo "the array finished before it was cancelled" >&2; exit 1; }
[ ! -f "$WORK/out2/preempted.jsonl" ] || { echo "the merge job ran after a failed array" >&2; exit 1; }
for file in "$WORK"/out2/tasks/preempted.*.jsonl; do
  [ "$(wc -l <"$file")" = 1 ] && tail -c 1 "$file" | od -An -c | grep -q '\\n' || { echo "torn record: $file" >&2; exit 1; }
done
jobs=$(submit "$WORK/out2/slurm/preempted.submit.sh")
wait_for_jobs "$jobs"
same_results "$WORK/single/preempted.jsonl" "$WORK/out2/preempted.jsonl"
echo "ok: cancelled with $done_before of $runs runs recorded; resubmitted, all $runs recorded once, as a single process records them"
