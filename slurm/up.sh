#!/usr/bin/env bash
# Bring up a single-node SLURM test cluster on localhost, as root, without systemd:
# munge, MariaDB + slurmdbd (so sacct works), slurmctld and slurmd. State, logs and pid files live
# under $SLURM_ROOT (default /tmp/launcher-slurm); configs go to /etc/slurm where every client looks.
#
# Idempotent: a daemon left by an earlier run is kept when its pid file names a live process that
# answers (and the rendered config did not change); a dead, stale or silent one is replaced. Nothing
# is ever started twice. apt runs only when a binary is missing.
#
#   bash slurm/up.sh                 # from zero (~1.5 min with apt) or warm (~1 s)
#   WITH_DBD=0 bash slurm/up.sh      # no accounting: sacct fails, the launcher falls back to pickles
#   CGROUP=0 bash slurm/up.sh        # no cgroup limits (memory and cores not enforced)
# Knobs: SLURM_ROOT, WITH_DBD=1, CGROUP=1, CRED_EXPIRE=10, MAX_ARRAY_SIZE=101, MAX_JOB_COUNT=10000,
#   JOBS_PER_CORE=32 (the partition's OverSubscribe=FORCE:N: up to N jobs share each real core, so the
#   1,000 one-second trials of tests/test_slurm_scale.py overlap on a 2-core machine; 1 = one job per core).
# MAX_ARRAY_SIZE=101 (SLURM's default is 1001) makes a 1,000-trial sweep split into arrays, as on clusters
# that lower it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SL=${SLURM_ROOT:-/tmp/launcher-slurm}
WITH_DBD=${WITH_DBD:-1}
CGROUP=${CGROUP:-1}
HOST=$(hostname -s)
ETC=/etc/slurm
export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS
log(){ echo "slurm-up: $*" >&2; }
die(){ log "$*"; for f in "$SL"/log/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }; done; exit 1; }
# pid_of PIDFILE: the pid in PIDFILE when that process is alive (a zombie is not), else nothing
pid_of(){ local p; [ -s "$1" ] || return 0; p=$(cat "$1")
  kill -0 "$p" 2>/dev/null && ! grep -q '^[^)]*) Z' "/proc/$p/stat" 2>/dev/null && echo "$p" || true; }
# stop_pid PID: SIGTERM, SIGKILL after 10 s (slurmd ignores SIGTERM while it retries registering)
stop_pid(){ local p=$1 i; kill "$p" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$p" 2>/dev/null || true; }
# adopt NAME PIDFILE: a daemon running without our pid file (older run, other SLURM_ROOT) is recorded, not duplicated
adopt(){ local p; [ -n "$(pid_of "$2")" ] && return 0; p=$(pidof -s "$1" || true); [ -n "$p" ] && echo "$p" > "$2" || rm -f "$2"; }
# wait_for SECONDS CMD...: retry CMD (each try bounded: a client blocks long against a dead daemon)
wait_for(){ local end=$((SECONDS+$1)); shift; until timeout 5 "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }
ctld_up(){ timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state(){ timeout 5 sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1; }
# the controller's view of the node lags up to SlurmdTimeout: also ask the local slurmd itself (an RPC)
node_ok(){ timeout 5 scontrol show slurmd >/dev/null 2>&1 || return 1
  case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac; }
render(){ local t v; t=$(<"$1"); for v in HOST SL CPUS MEM_MB CRED_EXPIRE MAX_ARRAY_SIZE MAX_JOB_COUNT OVERSUBSCRIBE PROCTRACK ACCOUNTING DB_PASS; do t=${t//@$v@/${!v}}; done; printf '%s\n' "$t"; }
# install_conf SRC DEST MODE: write DEST only when it differs; exit status 0 means "changed"
install_conf(){ if [ -f "$2" ] && cmp -s "$1" "$2"; then rm -f "$1"; return 1; fi; install -m "$3" "$1" "$2"; rm -f "$1"; }

# --- packages (only when something is missing)
PKGS="slurm-wlm munge"; [ "$WITH_DBD" = 1 ] && PKGS="$PKGS slurmdbd mariadb-server"
need=0; for b in slurmctld slurmd munged sbatch; do command -v $b >/dev/null || need=1; done
if [ "$WITH_DBD" = 1 ]; then for b in slurmdbd mariadbd; do command -v $b >/dev/null || need=1; done; fi
if [ $need = 1 ]; then
  log "installing $PKGS"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
  log "apt done after $((SECONDS-T0)) s"
fi
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
mkdir -p "$SL"/{state,spool,log} /run/munge /var/log/munge /var/lib/munge /etc/munge "$ETC"
exec 9>"$SL/up.lock"; flock -w 300 9 || die "another slurm/up.sh holds $SL/up.lock"   # two callers at once: one waits

# --- configs: rendered from the templates; a changed config restarts the daemons that read it
CPUS=$(nproc); MEM_MB=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) - 2048 ))
CRED_EXPIRE=${CRED_EXPIRE:-10}; MAX_ARRAY_SIZE=${MAX_ARRAY_SIZE:-101}; MAX_JOB_COUNT=${MAX_JOB_COUNT:-10000}
JOBS_PER_CORE=${JOBS_PER_CORE:-32}
case "$JOBS_PER_CORE" in ""|*[!0-9]*|0) log "JOBS_PER_CORE must be an integer >= 1, got '$JOBS_PER_CORE'"; exit 2;; esac
if [ "$JOBS_PER_CORE" -gt 1 ]; then OVERSUBSCRIBE="FORCE:$JOBS_PER_CORE"; else OVERSUBSCRIBE=NO; fi
DB_PASS=slurmpw
if [ "$CGROUP" = 1 ]; then PROCTRACK=$'ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup,task/affinity'
else PROCTRACK=$'ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none'; fi
if [ "$WITH_DBD" = 1 ]; then
  ACCOUNTING=$'AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\nJobAcctGatherType=jobacct_gather/linux\nJobAcctGatherFrequency=30'
else ACCOUNTING=$'AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none'; fi
changed=0
render "$HERE/slurm.conf.template" > "$SL/slurm.conf.new"
install_conf "$SL/slurm.conf.new" "$ETC/slurm.conf" 644 && changed=1
render "$HERE/cgroup.conf.template" > "$SL/cgroup.conf.new"
install_conf "$SL/cgroup.conf.new" "$ETC/cgroup.conf" 644 && changed=1
dbd_changed=0
if [ "$WITH_DBD" = 1 ]; then
  render "$HERE/slurmdbd.conf.template" > "$SL/slurmdbd.conf.new"
  install_conf "$SL/slurmdbd.conf.new" "$ETC/slurmdbd.conf" 600 && dbd_changed=1
fi

# --- munge (Debian's postinst made /etc/munge/munge.key; make one if absent)
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge /var/log/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
MUNGE_PID=/run/munge/munged.pid
adopt munged "$MUNGE_PID"
if ! timeout 5 sh -c 'munge -n | unmunge' >/dev/null 2>&1; then
  p=$(pid_of "$MUNGE_PID"); [ -n "$p" ] && { log "munged $p not answering: replacing"; stop_pid "$p"; }
  rm -f "$MUNGE_PID" /run/munge/munge.socket.2*
  runuser -u munge -- /usr/sbin/munged 9>&-
  wait_for 10 sh -c 'munge -n | unmunge' || die "munged did not start"
  log "munged started"
fi

# --- accounting: MariaDB + slurmdbd
if [ "$WITH_DBD" = 1 ]; then
  if ! timeout 5 mysqladmin ping >/dev/null 2>&1; then
    /etc/init.d/mariadb start >/dev/null 9>&-; touch "$SL/mariadb.ours"   # down.sh stops it only when we started it
  fi
  timeout 30 mysql -uroot <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
  adopt slurmdbd "$SL/slurmdbd.pid"
  p=$(pid_of "$SL/slurmdbd.pid")
  if [ -n "$p" ] && { [ $dbd_changed = 1 ] || ! timeout 5 sacctmgr -n list cluster >/dev/null 2>&1; }; then
    log "slurmdbd $p stale or reconfigured: replacing"; stop_pid "$p"; p=""
  fi
  if [ -z "$p" ]; then
    rm -f "$SL/slurmdbd.pid"; slurmdbd 9>&-   # 9>&-: daemons must not inherit (and hold) the lock
    started=$SECONDS   # the first start creates the accounting schema (a few seconds)
    until msg=$(timeout 5 sacctmgr -n list cluster 2>&1); do
      case "$msg" in *fatal*) die "sacctmgr: $msg";; esac   # a config error: waiting would not help
      # the pid file appears once slurmdbd has daemonized: give it 5 s before calling it dead
      [ -z "$(pid_of "$SL/slurmdbd.pid")" ] && [ $((SECONDS-started)) -gt 5 ] && die "slurmdbd died"
      [ $((SECONDS-started)) -ge 120 ] && die "slurmdbd not answering: $(timeout 5 sacctmgr -n list cluster 2>&1 | tail -3)"
      sleep 0.2
    done
    log "slurmdbd started"
  fi
  timeout 10 sacctmgr -n list cluster format=cluster 2>/dev/null | grep -qw launcher ||
    timeout 10 sacctmgr -i -Q add cluster launcher >/dev/null 2>&1 || true
fi

# --- slurmctld
adopt slurmctld "$SL/slurmctld.pid"
p=$(pid_of "$SL/slurmctld.pid")
if [ -n "$p" ] && { [ $changed = 1 ] || ! ctld_up; }; then log "slurmctld $p stale or reconfigured: replacing"; stop_pid "$p"; p=""; fi
if [ -z "$p" ]; then
  rm -f "$SL/slurmctld.pid"
  slurmctld -i 9>&-   # -i: ignore unreadable state from an earlier run instead of refusing to start
  wait_for 30 sh -c 'scontrol ping | grep -q "is UP"' || die "slurmctld not answering: $(timeout 5 scontrol ping 2>&1 | tail -3)"
  log "slurmctld started"
  changed=1         # a new controller: let slurmd re-register cleanly
fi

# --- slurmd
adopt slurmd "$SL/slurmd.pid"
p=$(pid_of "$SL/slurmd.pid")
if [ -n "$p" ] && { [ $changed = 1 ] || ! node_ok; }; then log "slurmd $p stale or reconfigured: replacing"; stop_pid "$p"; p=""; fi
started=$SECONDS
if [ -z "$p" ]; then rm -f "$SL/slurmd.pid"; slurmd 9>&-; log "slurmd started"; fi
end=$((SECONDS+60)); resumed=0
until node_ok; do
  [ -n "$(pid_of "$SL/slurmctld.pid")" ] || die "slurmctld died"
  # the pid file appears only once slurmd has daemonized and initialised (cgroups, plugins):
  # give it 10 s before calling it dead (CI once read the file in that window and gave up)
  [ -n "$(pid_of "$SL/slurmd.pid")" ] || [ $((SECONDS-started)) -le 10 ] || die "slurmd died"
  case "$(node_state)" in drain*|down*) [ $resumed = 0 ] && { timeout 5 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true; resumed=1; };; esac
  [ $SECONDS -ge $end ] && die "node $HOST not idle after 60 s (state: $(node_state))"
  sleep 0.2
done
log "cluster up in $((SECONDS-T0)) s: node $HOST $(node_state), accounting=$([ "$WITH_DBD" = 1 ] && echo slurmdbd || echo none), state in $SL"
