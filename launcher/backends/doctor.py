"""`launcher doctor`: is this SLURM cluster usable by the `slurm` backend, and what should be fixed?

Prints one line per check (ok / warn / fail) and returns 0 when the cluster is usable (warnings
allowed) or 2 when it is not. Every command runs with a timeout: a dead controller makes the
SLURM clients block for minutes.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import TextIO

from launcher.backends.slurm_resources import ClusterLimits, run_command

REQUIRED = ("sbatch", "squeue", "scontrol", "sinfo")   # submit and watch
OPTIONAL = ("sacct",)                                  # final states of jobs that left squeue
TIMEOUT_S = 10


@dataclass
class Check:
    status: str          # "ok", "warn" or "fail"
    name: str
    detail: str


def check_commands() -> list[Check]:
    missing = [c for c in REQUIRED if shutil.which(c) is None]
    if missing:
        return [Check("fail", "commands", f"{', '.join(missing)} not on PATH: this is not a SLURM submit host. Run on "
                                          "a login node, install slurm-client, or start a local test cluster with "
                                          "`bash slurm/up.sh`")]
    checks = [Check("ok", "commands", " ".join(REQUIRED) + " on PATH")]
    checks += [Check("warn", "commands", f"{c} not on PATH: jobs that left squeue cannot be classified")
               for c in OPTIONAL if shutil.which(c) is None]
    return checks


def check_controller() -> Check:
    done = run_command(["scontrol", "ping"], timeout=TIMEOUT_S)
    text = (done.stdout + done.stderr).strip()
    if done.returncode == 0 and "is UP" in text:
        return Check("ok", "controller", text.splitlines()[0])
    return Check("fail", "controller", f"slurmctld does not answer `scontrol ping` ({text[:200] or done.returncode}); "
                                       "check that it runs and that munge works (`munge -n | unmunge`)")


def check_accounting(limits: ClusterLimits) -> Check:
    done = run_command(["sacct", "-n", "-X", "-S", "now-1hours", "-o", "JobID"], timeout=TIMEOUT_S)
    if done.returncode == 0 and limits.has_accounting:
        return Check("ok", "accounting", f"sacct answers ({limits.accounting})")
    why = (done.stderr.strip() or f"AccountingStorageType={limits.accounting}")[:200]
    return Check("warn", "accounting", f"sacct does not work ({why}). A job that dies without a result (cancelled, "
                                       "out of memory, killed) and has left squeue is classified 'unknown'; run "
                                       "slurmdbd (slurm/up.sh does) for exact final states")


def check_preemption(limits: ClusterLimits) -> Check:
    if limits.preempt_user_signal:
        return Check("ok", "preemption", "preempted jobs get USR2 first (preempt_send_user_signal): they checkpoint "
                                         "and requeue")
    return Check("warn", "preemption", "preempt_send_user_signal is not set: a preempted job is killed without USR2, "
                                       "so it cannot checkpoint at that moment and loses the work since its last "
                                       "epoch checkpoint. Fix: add SlurmctldParameters=preempt_send_user_signal to "
                                       "slurm.conf (newer releases may spell it PreemptParameters=send_user_signal) "
                                       "and run `scontrol reconfigure`, or ask the cluster admins")


def check_limits(limits: ClusterLimits) -> Check:
    status = "ok" if limits.source.startswith("scontrol") else "warn"
    return Check(status, "limits", f"MaxArraySize={limits.max_array_size} MaxSubmitJobs={limits.max_submit_jobs} "
                                   f"(from {limits.source}): sweeps are submitted in arrays of at most "
                                   f"{min(limits.max_array_size, limits.max_submit_jobs)} trials")


def check_partitions() -> list[Check]:
    done = run_command(["sinfo", "-h", "-o", "%P|%a|%l|%D|%G"], timeout=TIMEOUT_S)
    if done.returncode != 0:
        return [Check("fail", "partitions", f"sinfo failed: {done.stderr.strip()[:200]}")]
    checks = []
    for line in done.stdout.splitlines():
        name, avail, limit, nodes, gres = (line.split("|") + [""] * 5)[:5]
        gpus = gres if gres and gres != "(null)" else "none"
        checks.append(Check("ok" if avail == "up" else "warn", "partition",
                            f"{name} ({avail}): time limit {limit}, {nodes} node(s), GPUs {gpus}"))
    if not any(c.status == "ok" for c in checks):
        checks.append(Check("fail", "partitions", "no partition is up: nothing can run"))
    return checks


def gather() -> list[Check]:
    checks = check_commands()
    if any(c.status == "fail" for c in checks):
        return checks
    controller = check_controller()
    checks.append(controller)
    if controller.status == "fail":
        return checks
    limits = ClusterLimits.read()
    checks += [check_limits(limits), check_accounting(limits), check_preemption(limits)]
    return checks + check_partitions()


def run_doctor(out: TextIO = sys.stdout) -> int:
    """Check the SLURM cluster this machine submits to; 0 when usable (warnings allowed), else 2."""
    checks = gather()
    print("launcher doctor: SLURM backend", file=out)
    for check in checks:
        print(f"  {check.status:<4}  {check.name:<10}  {check.detail}", file=out)
    failed = [c for c in checks if c.status == "fail"]
    warned = [c for c in checks if c.status == "warn"]
    if failed:
        print(f"NOT usable: {len(failed)} check(s) failed", file=out)
        return 2
    print(f"usable ({len(warned)} warning(s))", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(run_doctor())
