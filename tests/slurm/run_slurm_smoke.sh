#!/usr/bin/env bash
# A real SLURM run of the project's profile: a one-node cluster on this machine (Debian's slurm-wlm + munge,
# daemons on loopback, everything under one temporary folder), the smoke experiment with SegFormer on 2
# GPUs (tests/slurm/smoke_2gpu.yaml; the node declares 2 count-only GPUs, torchrun runs 2 gloo processes)
# through `--workflow-profile profiles/slurm`, site names from a small local override (the pattern of
# profiles/slurm/site), then the daemons are stopped. Needs root (apt-get, munged, slurmd).
#
#   bash tests/slurm/run_slurm_smoke.sh [EXPERIMENT]      # default: tests/slurm/smoke_2gpu.yaml
#
# Prints the jobs, the wall time and what `scontrol show job` reported for a training and a CPU job; writes
# them to $VSS_SLURM_OUT (default: <work folder>/summary.txt). Exit 0 only when the run succeeded and its
# tables exist. Opt-in (docs/pipeline.md, "SLURM"): it takes minutes and installs system packages.
set -euo pipefail
{   # read whole before running: editing this file while it runs changes nothing
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
EXPERIMENT="${1:-tests/slurm/smoke_2gpu.yaml}"
PLUGIN_VERSION="2.8.0"          # the executor plugin version this project was tested with
W="$(mktemp -d /tmp/vss-slurm.XXXXXX)"
OUT="${VSS_SLURM_OUT:-$W/summary.txt}"
say() { printf '[slurm-check] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------- packages
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
python3 -m venv --system-site-packages "$W/venv"
"$W/venv/bin/pip" install -q "snakemake-executor-plugin-slurm==$PLUGIN_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
export PATH="$W/venv/bin:$PATH"

# ---------------------------------------------------------------------------------------------- daemons
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HOST="$(hostname -s)"
mkdir -p "$W/munge" "$W/state" "$W/spool" "$W/log" "$W/site" "$W/results"
chmod 700 "$W/munge"
mungekey --create --keyfile="$W/munge/munge.key" 2>/dev/null || dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$W/munge/munge.key"
MUNGE=(--socket="$W/munge/munge.socket" --key-file="$W/munge/munge.key" --pid-file="$W/munge/munged.pid"
       --log-file="$W/munge/munged.log" --seed-file="$W/munge/munge.seed")

cat > "$W/slurm.conf" <<CONF
ClusterName=vsscheck
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmdDebug=verbose
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
MinJobAge=3600
GresTypes=gpu
NodeName=vssnode NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=4 RealMemory=16000 Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=vssnode Default=YES MaxTime=2-00:00:00 State=UP
PartitionName=gpu Nodes=vssnode MaxTime=2-00:00:00 State=UP
CONF
# two stand-in GPU device files: SLURM allocates them like GPUs (CUDA_VISIBLE_DEVICES), torch sees none
mkdir -p "$W/dev" && for i in 0 1; do mknod "$W/dev/gpu$i" c 1 3 2>/dev/null || touch "$W/dev/gpu$i"; done
cat > "$W/gres.conf" <<CONF
AutoDetect=off
NodeName=vssnode Name=gpu File=$W/dev/gpu[0-1]
CONF
# The executor's job step clears SLURM_* variables (SLURM_CONF too) before its nested srun, which then reads
# the default /etc/slurm: the config goes there for the check's lifetime (never over a site's own).
ETC=/etc/slurm
if [ -e "$ETC/slurm.conf" ] && ! grep -q '^ClusterName=vsscheck$' "$ETC/slurm.conf"; then
  say "$ETC/slurm.conf exists (a real SLURM set-up?); this check makes its own cluster: not touching it"; exit 1
fi
mkdir -p "$ETC" && cp "$W/slurm.conf" "$W/gres.conf" "$ETC/"
export SLURM_CONF="$ETC/slurm.conf"

stop() {
  set +e
  for pidfile in "$W/slurmd.pid" "$W/slurmctld.pid" "$W/munge/munged.pid"; do
    pid="$(cat "$pidfile" 2>/dev/null)" || continue
    kill "$pid" 2>/dev/null
    for _ in 1 2 3 4 5; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null
  done
  grep -q '^ClusterName=vsscheck$' "$ETC/slurm.conf" 2>/dev/null && rm -f "$ETC/slurm.conf" "$ETC/gres.conf"
  say "daemons stopped; logs in $W/log"
}
trap stop EXIT

munged --force "${MUNGE[@]}"
slurmctld -c
slurmd -N vssnode
up=0
for _ in $(seq 30); do
  for d in slurmctld slurmd; do
    kill -0 "$(cat "$W/$d.pid" 2>/dev/null)" 2>/dev/null || { say "$d did not start:"; tail -5 "$W/log/$d.log" >&2; exit 1; }
  done
  timeout 5 sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)' && { up=1; break; }
  sleep 1
done
[ "$up" = 1 ] || { say "the node did not come up:"; tail -5 "$W/log/slurmctld.log" >&2; exit 1; }
sinfo -N -o '%N %P %T %c %m %G' >&2

# ---------------------------------------------------------------------------------------------- the run
# The local override: this cluster has no accounting (no account, status from squeue), its partition names
# and limits, and 1 CPU per GPU instead of the workflow's 8 (the node has 4 CPUs).
cat > "$W/site/partitions.yaml" <<CONF
partitions:
  gpu: {max_runtime: "2-00:00:00", max_gpu: 2}
  cpu: {max_runtime: "2-00:00:00"}
CONF
cat > "$W/site/config.yaml" <<CONF
slurm-no-account: true
slurm-status-command: squeue
slurm-init-seconds-before-status-checks: 5
slurm-partition-config: partitions.yaml
slurm-logdir: $W/log/jobs
set-resources:                 # every rule that may hold a GPU (the node has 4 CPUs for 2 GPUs)
  pretrain: {cpus_per_gpu: 1}
  train: {cpus_per_gpu: 1}
  evaluate: {cpus_per_gpu: 1}
  fps: {cpus_per_gpu: 1}
CONF

cd "$REPO"
say "running $EXPERIMENT through profiles/slurm (work folder $W)"
start=$(date +%s)
set +e
python -m snakemake tables --profile "$W/site" --workflow-profile profiles/slurm \
  --config "experiment=$EXPERIMENT" "results=$W/results" > "$W/log/snakemake.log" 2>&1
rc=$?
set -e
wall=$(( $(date +%s) - start ))
name="$(basename "${EXPERIMENT%.yaml}")"

# ---------------------------------------------------------------------------------------------- evidence
scontrol show job > "$W/log/scontrol.txt" 2>&1 || true
status=0
python3 - "$W/log/scontrol.txt" "$W/log/snakemake.log" "$rc" "$wall" "$W/results/$name" > "$OUT" <<'PY' || status=$?
import re, sys
from pathlib import Path
text, log, rc, wall, res = Path(sys.argv[1]).read_text(), Path(sys.argv[2]).read_text(), *sys.argv[3:]
jobs = [dict(re.findall(r"(\w[\w:/]*)=(\S*)", block)) for block in text.split("\n\n") if "JobId=" in block]
print(f"snakemake exit {rc}, wall {int(wall) // 60} min {int(wall) % 60} s, {len(jobs)} sbatch jobs "
      f"({sum(j.get('JobState') == 'COMPLETED' for j in jobs)} COMPLETED)")
rules = {}
for j in jobs:
    m = re.search(r"rule_(\w+?)_wildcards_(\S*)", j.get("Comment", "")) or re.search(r"rule_(\w+)", j.get("Comment", ""))
    rule = m.group(1) if m else "?"
    rules.setdefault(rule, []).append(j)
print("jobs per rule: " + ", ".join(f"{r} {len(v)}" for r, v in sorted(rules.items())))
def show(j):
    keys = ("JobId", "JobName", "JobState", "Partition", "NumCPUs", "TimeLimit", "RunTime", "TRES", "TresPerJob",
            "TresPerNode", "CpusPerTres", "MinMemoryNode", "Comment")
    return "  " + " ".join(f"{k}={j[k]}" for k in keys if k in j)
on_gpu = lambda j: "gpu" in j.get("TRES", "") + j.get("TresPerJob", "")
gpu = [j for j in rules.get("train", []) if on_gpu(j)]
cpu = [j for r in ("train", "count_complexity") for j in rules.get(r, []) if not on_gpu(j)]
print("a training job on GPUs:\n" + (show(gpu[0]) if gpu else "  none"))
print("a CPU job:\n" + (show(cpu[0]) if cpu else "  none"))
tables = sorted(p.name for p in Path(res, "tables").glob("*.csv"))
print(f"tables: {len(tables)} CSV files in {res}/tables")
ok = int(rc) == 0 and len(tables) > 0
sys.exit(0 if ok else 1)
PY
cat "$OUT"
[ "$rc" -eq 0 ] || tail -40 "$W/log/snakemake.log" >&2
exit $status
}
