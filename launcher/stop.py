"""Stopping on a signal: SIGTERM and SIGHUP stop the program exactly like Ctrl-C (SIGINT).

The handler raises where the main thread is (`Terminated`, a KeyboardInterrupt, for SIGTERM/SIGHUP;
KeyboardInterrupt for SIGINT), so a blocking call (an inline trial, a sleep) is interrupted at once.
Python cannot raise out of a finalizer (a `__del__`, a weakref callback of SQLAlchemy or MLflow): an
exception raised there is "ignored" with a traceback on stderr and the program would run on. So the
handler also records the request, an unraisable-hook keeps such an ignored stop silent, and the
controller loop calls `check()` on every turn, which raises the recorded stop where it can land.
"""
from __future__ import annotations

import logging
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP): stop like Ctrl-C (running trials cancelled, journal consistent)."""


_requested: list[BaseException] = []
_deferring = [0]     # depth of `deferred()` regions in the main thread


def _stop(signum, frame) -> None:
    stop = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signal.Signals(signum).name)
    _requested.append(stop)
    if _deferring[0] == 0:
        raise stop
    # inside a database write: raised when the region ends (an exception raised in the middle of an
    # SQLAlchemy commit comes out as another error, and could leave the store half-written)


def requested() -> bool:
    return bool(_requested)


def requested_signal() -> str:
    """The name of the signal of the last stop requested ("SIGINT" for Ctrl-C)."""
    last = _requested[-1]
    return str(last) if isinstance(last, Terminated) else "SIGINT"


class deferred:
    """A region a stop must not cut in two (an MLflow write): a signal arriving inside it is raised
    when it ends. Re-entrant."""

    def __enter__(self) -> "deferred":
        _deferring[0] += 1
        return self

    def __exit__(self, kind, value, tb) -> None:
        _deferring[0] -= 1
        if _deferring[0] == 0 and _requested and kind is None:
            raise _requested[-1]


class DeferredCalls:
    """Wraps an object so that each of its method calls is a `deferred` region (the MLflow client)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with deferred():
                return value(*args, **kwargs)
        return call


def check() -> None:
    """Raise a stop that a signal requested and a finalizer swallowed (called from the controller loop)."""
    if _requested:
        raise _requested[-1]


def _quiet_unraisable(info, default=sys.unraisablehook) -> None:
    if isinstance(info.exc_value, KeyboardInterrupt) and _requested:
        return                  # the stop is recorded; check() raises it where it can land
    default(info)


class _QuietAfterStop(logging.Filter):
    """Once a stop is requested, libraries caught mid-query (SQLAlchemy's "Error closing cursor",
    MLflow's retries) log the interruption with a traceback: noise after the one-line message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_requested and record.name.startswith(("sqlalchemy", "mlflow", "alembic", "urllib3")))


_QUIET = _QuietAfterStop()


def _handlers() -> list:
    return [h for h in (logging.lastResort, *logging.getLogger().handlers) if h is not None]


def install() -> dict:
    """Install the handlers (main thread only); returns what to pass to `uninstall`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _requested.clear()
    _deferring[0] = 0
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    previous["hook"] = sys.unraisablehook
    sys.unraisablehook = _quiet_unraisable
    for handler in _handlers():
        handler.addFilter(_QUIET)
    return previous


def uninstall(previous: dict) -> None:
    hook = previous.pop("hook", None)
    if hook is not None:
        sys.unraisablehook = hook
    for handler in _handlers():
        handler.removeFilter(_QUIET)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    _requested.clear()
