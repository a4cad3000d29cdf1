"""Helpers shared by the benchmarks in bench/."""

from __future__ import annotations

import os


def members(inos: set[int]) -> list[int]:
    """PIDs whose PID namespace inode is in ``inos`` (unreadable or gone ones skipped)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/pid").st_ino in inos:
                    out.append(int(name))
            except OSError:
                continue
    return out
