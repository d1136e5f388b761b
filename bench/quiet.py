"""Keeps a starting dev server's banner out of a benchmark's printed report."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """The dev server inherits this process's stdout while it starts; its banner
    would land in the middle of the report (its errors, on stderr, still show)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
