# shellcheck shell=bash
# A private single-node Slurm on localhost, for tests (sourced by slurm_array_test.sh).
#   slurm_local_start RUN_DIR   writes RUN_DIR/slurm.conf, starts munged, slurmctld and slurmd,
#                               waits (bounded) until the node is idle; exports SLURM_CONF.
#   slurm_local_stop            stops the daemons it started (by their pids), bounded in time.
# Nothing goes to /etc or /var: key, sockets, state, spool, pids and logs live in RUN_DIR.
# Needs root (slurmd runs jobs as any user). On failure slurm_local_start returns non-zero with
# the reason in SLURM_LOCAL_ERROR (the tail of the failing daemon's log appended).
# See /work/shared/docs/slurm-single-node.md for what mattered on these machines.

SLURM_LOCAL_DIR=""
SLURM_LOCAL_ERROR=""
_slurm_local_pids=()

# SLURM_LOCAL_ERROR: the reason, with the last line a daemon wrote (its -D output or its log
# file) on the first line, and the tails of those files below.
_slurm_local_fail() {
  local reason=$1 f last=""
  shift
  for f in "$@"; do
    [ -s "$f" ] && last=$(grep -v '^\s*$' "$f" | tail -n 1)
  done
  SLURM_LOCAL_ERROR="$reason${last:+ ($last)}"
  for f in "$@"; do
    [ -s "$f" ] && SLURM_LOCAL_ERROR+=$'\n'"--- last lines of $f:"$'\n'"$(tail -n 8 "$f")"
  done
  return 1
}

# A TCP port nothing listens on (another test run may use the default 6817/6818).
_slurm_local_free_port() {
  local p used
  used=$(ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' || true)
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  echo $((20000 + RANDOM % 20000))
}

slurm_local_start() {
  local dir=$1 host node mem cpus ctld_port d_port
  SLURM_LOCAL_DIR=$dir
  mkdir -p "$dir"/{state,spool,munge,log}
  chmod 711 "$dir" "$dir/munge"  # munged wants execute permission for all on its socket folder
  host=$(hostname -s 2>/dev/null || hostname)
  node=fgqtest$$
  cpus=$(slurmd -C 2>/dev/null | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n 1)
  mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$cpus" ] || cpus=$(nproc)
  [ -n "$mem" ] || mem=1000
  ctld_port=$(_slurm_local_free_port)
  d_port=$(_slurm_local_free_port)
  [ "$d_port" != "$ctld_port" ] || d_port=$((ctld_port + 1))

  # munge: a private 1 KiB key and socket.
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  local sock=$dir/munge/munge.socket
  timeout 10 munged --force --key-file="$dir/munge/munge.key" --socket="$sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 ||
    { _slurm_local_fail "munged did not start" "$dir/log/munged.out" "$dir/log/munged.log"; return 1; }
  for _ in $(seq 1 50); do [ -S "$sock" ] && [ -s "$dir/munge/munged.pid" ] && break; sleep 0.1; done
  [ -s "$dir/munge/munged.pid" ] && _slurm_local_pids+=("$(cat "$dir/munge/munged.pid")")
  [ -S "$sock" ] || { _slurm_local_fail "munged did not create its socket" "$dir/log/munged.log"; return 1; }

  cat >"$dir/slurm.conf" <<CONF
ClusterName=fgqtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=5
InactiveLimit=0
KillWait=5
NodeName=$node NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=10 State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf

  slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  _slurm_local_pids+=($!)
  local ctld=$!
  slurmd -D -N "$node" -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
  _slurm_local_pids+=($!)
  local d=$!
  # Idle within 20 s (0.6 s is usual), or the reason why not.
  local state=""
  for _ in $(seq 1 100); do
    kill -0 "$ctld" 2>/dev/null ||
      { _slurm_local_fail "slurmctld exited" "$dir/log/slurmctld.out" "$dir/log/slurmctld.log"; return 1; }
    kill -0 "$d" 2>/dev/null ||
      { _slurm_local_fail "slurmd exited" "$dir/log/slurmd.out" "$dir/log/slurmd.log"; return 1; }
    # Ask only once slurmctld listens: before that the client retries for seconds.
    if command -v ss >/dev/null; then
      ss -Hltn 2>/dev/null | awk '{print $4}' | grep -q ":$ctld_port\$" || { sleep 0.1; continue; }
    fi
    state=$(timeout 5 sinfo -h -n "$node" -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && return 0
    sleep 0.2
  done
  _slurm_local_fail "the node did not become idle in 20 s (state '${state:-none}')" "$dir/log/slurmd.out" \
    "$dir/log/slurmd.log"
}

slurm_local_stop() {
  [ -n "$SLURM_LOCAL_DIR" ] || return 0
  local pid alive
  if [ -n "${SLURM_CONF:-}" ]; then
    # Jobs still running (a failed or timed-out test) first: their slurmstepd outlives slurmd.
    timeout 5 scancel --quiet --full -M fgqtest --user=root >/dev/null 2>&1 ||
      timeout 5 scancel --quiet --full --user=root >/dev/null 2>&1
    for _ in $(seq 1 30); do
      [ -z "$(timeout 2 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
    timeout 5 scontrol shutdown >/dev/null 2>&1
  fi
  # munged does not listen to scontrol; SIGTERM is a clean stop for all three.
  for pid in "${_slurm_local_pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 1 50); do  # up to 5 s, then SIGKILL; only the processes started above
    alive=0
    for pid in "${_slurm_local_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${_slurm_local_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  _slurm_local_pids=()
  SLURM_LOCAL_DIR=""
  return 0
}
