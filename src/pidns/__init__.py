"""pidns: make Linux PID namespaces usable and visible, from the shell and from Python.

    import pidns
    done = pidns.run(["ps", "-ef"], capture_output=True)   # CompletedProcess-like
    with pidns.Sandbox(["sleep", "60"]) as box:            # leaving the block ends the ns
        box.pid, box.ns, box.translate(1)

This module only re-exports; names are imported on first use, so that
``import pidns`` (and the CLI) stays cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from pidns.errors import (
        NamespaceLimit,
        NoSuchProcess,
        NotFound,
        ParseError,
        PermissionDenied,
        PidnsError,
        Refused,
        TimeoutExpired,
        Unsupported,
        UsageError,
    )
    from pidns.ops.peer import peer_pid
    from pidns.ops.see import namespaces, processes
    from pidns.ops.spawn import CompletedProcess, Sandbox, run
    from pidns.ops.translate import translate

# public name -> module that defines it
_LAZY = {
    "run": "pidns.ops.spawn",
    "Sandbox": "pidns.ops.spawn",
    "CompletedProcess": "pidns.ops.spawn",
    "translate": "pidns.ops.translate",
    "processes": "pidns.ops.see",
    "namespaces": "pidns.ops.see",
    "peer_pid": "pidns.ops.peer",
    **dict.fromkeys(
        ("NamespaceLimit", "NoSuchProcess", "NotFound", "ParseError", "PermissionDenied",
         "PidnsError", "Refused", "TimeoutExpired", "Unsupported", "UsageError"),
        "pidns.errors"),
}

__all__ = [
    "CompletedProcess",
    "NamespaceLimit",
    "NoSuchProcess",
    "NotFound",
    "ParseError",
    "PermissionDenied",
    "PidnsError",
    "Refused",
    "Sandbox",
    "TimeoutExpired",
    "Unsupported",
    "UsageError",
    "namespaces",
    "peer_pid",
    "processes",
    "run",
    "translate",
]


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pidns' has no attribute {name!r}")
    value = getattr(__import__(mod, fromlist=[name]), name)
    globals()[name] = value
    return value
