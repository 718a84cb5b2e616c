"""CPU seconds spent so far, by process group and by PostgreSQL backend (Linux /proc; 0 elsewhere)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str) -> list[str] | None:
    try:
        # The command name (field 2) may hold spaces or parentheses: split after its closing one.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def of_pid(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


def of_group(pgid: int) -> float:
    """Every live process of the group `pgid` (a process started with start_new_session and its children):
    a child that ended in between is not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is not None and int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def of_pids(pids: Iterable[int]) -> float:
    return sum(of_pid(pid) for pid in pids)
