"""MLflow, written by one process only: the controller's tracking writer (engine/tracking_writer.py).

Trial jobs never open the tracking store (no SQLite locks, no migration races, no lost points);
they write an outbox that the writer copies in. Layout: one experiment per sweep; a sweep
run; a run per study (task x method) as its child; a run per trial as the study run's child,
created at submit time so that a requeued job keeps the same run.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Iterable

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "launcher.kind"        # "sweep", "study" or "trial"


def default_uri(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'mlflow.db'}"


def sweep_uri(spec) -> str:
    """The tracking URI of a sweep spec: its `tracking.uri`, else the SQLite file in its output folder."""
    return spec.tracking.uri or default_uri(spec.out)


def recorded_uri(record: dict, folder: Path) -> str:
    """The tracking URI of a recorded sweep: its `tracking.uri`, else the SQLite file in its folder."""
    return (record.get("tracking") or {}).get("uri") or default_uri(folder)


def _flatten(prefix: str, value: Any, into: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    else:
        into[prefix] = str(value)[:6000]


def outbox_points(lines: Iterable[dict]) -> list[tuple[str, float, float | None, int]]:
    """Metric points of outbox lines, each stamped with its line's own time (so copying again is a no-op)."""
    return [(k, v, line.get("time"), line["step"]) for line in lines for k, v in sorted(line["metrics"].items())]


# Filesystems where SQLite's write-ahead log is unsafe (its index lives in shared memory, which
# processes on different hosts cannot share): there the store keeps SQLite's default rollback journal.
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "fuse.sshfs",
                       "glusterfs", "fuse.glusterfs", "afs", "9p", "panfs", "wekafs")


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` (the longest mount point above it in /proc/mounts)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    path = Path(path).resolve()
    best, kind = -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (path == Path(point) or Path(point) in path.parents) and len(point) > best:
            best, kind = len(point), fields[2]
    return kind


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (its `?options` left out), None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def use_write_ahead_log(uri: str) -> bool:
    """Put a local SQLite store in WAL mode (persistent in the file; measured ~4x cheaper commits than
    the rollback journal, and readers such as `mlflow ui` no longer block the controller). Same
    durability: each commit is still synced. Not on a network filesystem, where WAL is unsafe."""
    db = sqlite_path(uri)
    if db is None or not db.parent.is_dir() or filesystem_type(db.parent) in NETWORK_FILESYSTEMS:
        return False
    import sqlite3

    if not db.exists():
        # A store deleted by hand after a kill may leave its log behind: a fresh file must not replay it.
        for side in (db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if side.exists():
                side.rename(side.with_name(f"{side.name}.stale-{int(time.time())}"))

    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.Error:
        return False
    return mode == "wal"


class Tracker:
    """Creates the runs of a sweep and copies trial results into them."""

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None):
        from mlflow.tracking import MlflowClient

        from launcher.stop import DeferredCalls

        self.uri = uri
        use_write_ahead_log(uri)
        # every store call finishes before a Ctrl-C/SIGTERM lands (launcher.stop): no half-written commit
        self.client = DeferredCalls(MlflowClient(tracking_uri=uri))
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = artifact_root.resolve().as_uri() if artifact_root is not None else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = found.experiment_id

    def create_run(self, name: str, kind: str, *, parent: str | None = None,
                   tags: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> str:
        all_tags = {KIND_TAG: kind, **(tags or {})}
        if parent:
            all_tags[PARENT_TAG] = parent
        # tag values are strings: SQLite coerces an int, a tracking server's protobuf refuses it
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={k: str(v) for k, v in all_tags.items()})
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_batch(self, run_id: str, *, points: Iterable[tuple[str, float, float | None, int]] = (),
                  params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None) -> None:
        """Metric points (key, value, timestamp in s or None for now, step), params (nested dicts are
        flattened to dotted keys) and tags, in as few store calls as MLflow's batch limits allow (one
        for a segment's writes): each call is a transaction, and on SQLite a commit is the cost."""
        from mlflow.entities import Metric, Param, RunTag

        now = time.time()
        metrics = [Metric(k, float(v), int((now if ts is None else ts) * 1000), int(step)) for k, v, ts, step in points]
        flat: dict[str, str] = {}
        _flatten("", params or {}, flat)
        param_items = [Param(k, v) for k, v in sorted(flat.items())]
        tag_items = [RunTag(k, str(v)) for k, v in sorted((tags or {}).items())]
        # MLflow's limits per call: 1000 metrics, 100 params, 100 tags, 1000 entities in all
        while metrics or param_items or tag_items:
            some_params, param_items = param_items[:100], param_items[100:]
            some_tags, tag_items = tag_items[:100], tag_items[100:]
            room = 1000 - len(some_params) - len(some_tags)
            some_metrics, metrics = metrics[:room], metrics[room:]
            self.client.log_batch(run_id, metrics=some_metrics, params=some_params, tags=some_tags)

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0,
                    timestamp_s: float | None = None) -> None:
        self.log_batch(run_id, points=[(k, v, timestamp_s, step) for k, v in sorted(metrics.items())])

    def log_outbox_lines(self, run_id: str, lines: Iterable[dict]) -> None:
        self.log_batch(run_id, points=outbox_points(lines))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def runs(self, kind: str | None = None) -> list:
        """Every run of the experiment (optionally one kind), oldest first, deterministic order."""
        query = f"tags.`{KIND_TAG}` = '{kind}'" if kind else ""
        found, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=query,
                                           max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda r: (r.info.start_time, r.info.run_name or "", r.info.run_id))


def relocate_artifacts(uri: str, artifact_root: Path) -> int:
    """A sweep folder that was moved or copied carries its SQLite store, which records artifact
    locations as absolute paths into the OLD folder: point them at this folder's artifact root, so
    artifacts are written here (and never into, or next to, the original). Returns the experiments
    changed. Only the sweep's own store is touched (a `sqlite:///` file whose artifacts live in a
    folder named `mlartifacts`)."""
    import sqlite3

    database = sqlite_path(uri)
    if database is None or not database.is_file():
        return 0
    new = Path(artifact_root).resolve().as_uri()
    changed = 0
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall()
        for experiment_id, location in rows:
            if not location or location == new or not location.rstrip("/").endswith("/mlartifacts"):
                continue
            connection.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, experiment_id))
            connection.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                               "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
                               (new, len(location) + 1, experiment_id, len(location), location))
            changed += 1
        connection.commit()
    except sqlite3.Error:          # not an MLflow store yet (or another schema): leave it alone
        return 0
    finally:
        connection.close()
    return changed


# A tracking server that stops answering mid-sweep fails each MLflow call in bounded time (MLflow's
# defaults, 120 s x 7 retries with backoff, hang the controller for many minutes per call).
HTTP_ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"}


def check_tracking(uri: str, timeout_s: float = 10) -> None:
    """Before a sweep starts: an http(s) tracking server must answer within `timeout_s`.

    GETs `<uri>/health` (a 404 there: the experiments search endpoint instead) and raises
    `launcher.errors.SpecError` naming the server, what failed and what to do. Other URIs (SQLite,
    folders) are local and not checked here. Also sets MLflow's HTTP timeout and retries (unless
    the environment already does) so that a server that dies mid-sweep fails in bounded time.
    """
    import urllib.error
    import urllib.request

    from launcher.errors import SpecError

    if not uri.lower().startswith(("http://", "https://")):
        return
    for name, value in HTTP_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    base = uri.rstrip("/")
    todo = "Start the server (mlflow server --host HOST --port PORT), fix tracking.uri, or remove " \
           "tracking.uri to track in a local SQLite file."
    for path in ("/health", "/api/2.0/mlflow/experiments/search?max_results=1"):
        request = urllib.request.Request(base + path, headers=_auth_headers())
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:   # http(s) only, checked above
                answer.read(1024)
            return
        except urllib.error.HTTPError as e:
            if e.code == 404 and path == "/health":
                continue            # not an MLflow server's /health: ask the REST API itself
            if e.code in (401, 403):
                raise SpecError(f"the MLflow tracking server {uri} refused the request (HTTP {e.code})",
                                key="tracking.uri",
                                hint="Set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                                     "MLFLOW_TRACKING_PASSWORD, to credentials it accepts.") from None
            raise SpecError(f"the MLflow tracking server {uri} answered {base + path} with HTTP {e.code}",
                            key="tracking.uri", hint=todo) from None
        except (TimeoutError, OSError, ValueError) as e:   # URLError is an OSError
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                what = f"no answer within {timeout_s:g} s"
            else:
                what = " ".join(str(getattr(reason, "strerror", None) or reason).split()) or type(e).__name__
            raise SpecError(f"cannot reach the MLflow tracking server {uri}: {what}", key="tracking.uri",
                            hint=todo) from None


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow itself would send (MLFLOW_TRACKING_TOKEN, or username and password)."""
    import base64

    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}
