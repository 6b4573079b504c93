"""Where a sweep writes: the output folder and the tracking store (`tracking.uri`), checked before
anything is written: a URI of a known shape, a folder or database file that can be made where it is
named. Mixed into `launcher.spec.validation.Validator` (which provides the scalar readers and `cwd`)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from launcher.errors import did_you_mean
from launcher.spec.sweep import TRACKING_KEYS, URI_SCHEMES, TrackingSpec
from launcher.spec.types import join_hints as _hint
from launcher.spec.yaml_nodes import Node, short

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def _parents_are_folders(node: Node, key: str, path: Path, what: str, hint: str) -> None:
    """The nearest existing parent of `path` must be a folder, or `path` cannot be made."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise node.error(key, f"cannot make {what} {path}: {parent} is a file", hint)
            break


class StoreReader:
    def writable_folder(self, node: Node, key: str, out: Path) -> None:
        """The output folder may exist (a rerun) but must be a folder, and so must what it is in."""
        if out.exists() and not out.is_dir():
            raise node.error(key, f"the output folder {out} is an existing file",
                             "Pick another output folder (`out:` or --out), or move the file away.")
        _parents_are_folders(node, key, out, "the output folder", "Pick another output folder (`out:` or --out).")

    def tracking(self, top: dict) -> TrackingSpec:
        entry = top.get("tracking")
        if entry is None:
            return TrackingSpec()
        entries = self.mapping(entry[1], "tracking", TRACKING_KEYS, "uri")
        n = self.present(entries, "uri")
        if n is None:
            return TrackingSpec()
        key = "tracking.uri"
        hint = "Use sqlite:///path/to/mlflow.db, http(s)://host:port, or a folder path."
        uri = self.string(n, key, "a tracking URI", hint).strip()
        if not uri:
            raise n.error(key, "expected a tracking URI, got an empty string", hint)
        m = _SCHEME_RE.match(uri)
        if m and len(m.group(1)) > 1:  # a one-letter "scheme" is a Windows drive
            scheme = m.group(1).lower()
            if scheme not in URI_SCHEMES:
                raise n.error(key, f"unsupported URI scheme {scheme!r}; expected one of: "
                                   f"{', '.join(URI_SCHEMES)}", _hint(did_you_mean(scheme, URI_SCHEMES), hint))
            if scheme == "sqlite":
                if not uri.startswith("sqlite:///"):
                    raise n.error(key, f"malformed SQLite URI {short(uri)}",
                                  "Write sqlite:///relative/mlflow.db or sqlite:////absolute/mlflow.db.")
                db, query = (uri[len("sqlite:///"):].split("?", 1) + [""])[:2]
                if not db or db.endswith("/"):
                    raise n.error(key, f"SQLite URI {short(uri)} names no database file", hint)
                if not db.startswith("/"):
                    db = str((self.cwd / db).resolve())
                    uri = f"sqlite:///{db}" + (f"?{query}" if query else "")
                self.store_path(n, key, Path(db))
            elif scheme in ("http", "https"):
                self.http_uri(n, key, uri, hint)
            elif scheme == "file":
                self.file_uri(n, key, uri)
            return TrackingSpec(uri=uri)
        folder = (self.cwd / Path(uri).expanduser()).resolve()
        self.store_path(n, key, folder, folder=True)
        return TrackingSpec(uri=str(folder))

    @staticmethod
    def http_uri(n: Node, key: str, uri: str, hint: str) -> None:
        """http(s)://host[:port][/path]: a host, a port in 1..65535, no spaces, query or fragment."""
        try:
            parts = urlsplit(uri)
            port = parts.port
        except ValueError as e:        # e.g. a port that is not a number, an unclosed [IPv6
            raise n.error(key, f"malformed URI {short(uri)}: {e}", hint) from None
        if not parts.hostname:
            raise n.error(key, f"URI {short(uri)} names no host", hint)
        if port == 0:
            raise n.error(key, f"URI {short(uri)}: port 0 is not a port", hint)
        if any(c.isspace() or ord(c) < 32 for c in uri):
            raise n.error(key, f"URI {short(uri)} contains a space or control character",
                          "Remove it (percent-encode it as %20 if it belongs there).")
        if parts.query or parts.fragment:
            raise n.error(key, f"URI {short(uri)} has a query (?...) or fragment (#...)",
                          "A tracking server URI is http(s)://host:port, optionally with a path.")
        if re.search(r"[^A-Za-z0-9.:\[\]_-]", parts.hostname):
            raise n.error(key, f"URI {short(uri)}: {parts.hostname!r} is not a host name", hint)

    def file_uri(self, n: Node, key: str, uri: str) -> None:
        """file:///absolute/folder (or file:/absolute/folder): MLflow's file store."""
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise n.error(key, f"malformed file URI {short(uri)}",
                          "Write file:///absolute/path/to/folder, or the folder's path without file:.")
        if parts.query or parts.fragment:
            raise n.error(key, f"file URI {short(uri)} has a query (?...) or fragment (#...)",
                          "Write file:///absolute/path/to/folder.")
        self.store_path(n, key, Path(parts.path), folder=True)

    @staticmethod
    def store_path(n: Node, key: str, path: Path, folder: bool = False) -> None:
        """A local tracking store (SQLite file or folder) must be creatable where it is named."""
        if path.exists() and path.is_dir() != folder:
            raise n.error(key, f"{path} is {'a file' if folder else 'a folder'}; expected "
                               f"{'a folder' if folder else 'a database file'}",
                          "Point tracking.uri elsewhere.")
        _parents_are_folders(n, key, path, "the tracking store", "Point tracking.uri elsewhere.")
