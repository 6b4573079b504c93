"""Errors the user can fix. The CLI prints `str(err)` to stderr and exits with code 2.

`SpecError` is raised for any bad input: a malformed sweep file, an unknown method, a dataset file
that is not where it should be. Its text is one self-contained line (plus hint) in the form

    <file>:<line>: <key path>: <what is wrong>. <hint>

e.g. ``sweeps/x.yaml:12: methods.autoar.max_dif: unknown key. Did you mean 'max_diff'?``.
Every part but the message is optional; values given on the command line use
``file="command line"`` and no line number.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class SpecError(Exception):
    """Bad user input: printed as one message, exit code 2, nothing written."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.key = key
        self.hint = hint

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.key:
            parts.append(_printable(self.key))
        parts.append(_short_words(self.message))
        text = ": ".join(parts)
        if self.hint:
            text = text.rstrip()
            if not text.endswith((".", "?", "!", ":")):
                text += "."
            text += " " + _short_words(self.hint)
        return text

    def __repr__(self) -> str:
        return f"SpecError({str(self)!r})"


def _printable(text: str) -> str:
    """A key as the user can read it on one line: control characters (a key may be any YAML string,
    a newline included) are shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short_words(text: str, limit: int = 200) -> str:
    """A message quoting a huge value (a 5,000-character name echoed in a hint) stays readable."""
    return " ".join(w if len(w) <= limit else f"{w[:60]}...({len(w)} characters)" for w in text.split(" "))


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """'Did you mean 'x'?' for the closest option(s) to `word`, or None."""
    options = list(dict.fromkeys(options))
    if not isinstance(word, str) or not options or len(word) > 100:
        return None
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"Did you mean '{lowered[word.lower()]}'?"
    scored = []
    for i, option in enumerate(options):
        m = difflib.SequenceMatcher(None, word.lower(), option.lower())
        scored.append((m.ratio(), -i, option))
    close = set(difflib.get_close_matches(word.lower(), list(lowered), n=len(options), cutoff=0.6))
    best = sorted((s for s in scored if s[2].lower() in close), reverse=True)
    if not best:
        return None
    top = [o for r, _, o in best if r == best[0][0]][:3]
    return "Did you mean " + " or ".join(f"'{o}'" for o in top) + "?"
