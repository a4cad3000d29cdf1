"""Capabilities of the calling thread, read from /proc (no imports: start-up path)."""

from __future__ import annotations

import os


def has_cap_sys_admin() -> bool:
    """Whether the calling thread has CAP_SYS_ADMIN (bit 21 of CapEff) in its user ns."""
    try:
        with open("/proc/thread-self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> 21 & 1)
    except OSError:
        pass
    return os.geteuid() == 0
