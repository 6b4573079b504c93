#!/usr/bin/env bash
# Stop the test cluster that slurm/up.sh started: cancel its jobs, then stop each daemon by its pid
# file (never by process name), SIGKILL after a 10 s grace period (slurmd ignores SIGTERM while it
# retries registering). MariaDB is stopped only when up.sh started it. State under $SLURM_ROOT is
# kept, so job ids keep counting up across down/up (a reused submitit folder never meets old ids).
#   bash slurm/down.sh
SL=${SLURM_ROOT:-/tmp/launcher-slurm}
T0=$(date +%s.%N)
PIDFILES="$SL/slurmd.pid $SL/slurmctld.pid $SL/slurmdbd.pid /run/munge/munged.pid"
# Running jobs: slurmstepd outlives slurmd, so cancel them while the controller still answers.
if timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'; then
  timeout 10 scancel --user=root 2>/dev/null || true
  for i in $(seq 50); do [ -z "$(timeout 5 squeue -h -t R,CG,PD 2>/dev/null)" ] && break; sleep 0.1; done
fi
pids=""; for f in $PIDFILES; do [ -s "$f" ] && pids="$pids $(cat "$f")"; done
[ -n "$pids" ] && kill $pids 2>/dev/null
left=""
for i in $(seq 100); do
  left=""; for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  [ -z "$left" ] && break; sleep 0.1
done
[ -n "$left" ] && kill -9 $left 2>/dev/null
rm -f $PIDFILES
if [ -f "$SL/mariadb.ours" ] && [ -x /etc/init.d/mariadb ]; then
  timeout 5 mysqladmin ping >/dev/null 2>&1 && /etc/init.d/mariadb stop >/dev/null
  rm -f "$SL/mariadb.ours"
fi
echo "slurm-down: stopped in $(echo "$(date +%s.%N) - $T0" | bc 2>/dev/null || echo '?') s" >&2
true
