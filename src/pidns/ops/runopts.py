"""Options shared by ``run``, ``run -d`` and ``exec``: ``--env`` pairs, ``--pid-file``,
``--json-status-fd``. One place, light imports (``pidns run``'s start-up path)."""

from __future__ import annotations

import os


def _usage(command: str, reason: str, hint: str) -> Exception:
    from pidns.errors import UsageError

    return UsageError(f"parse the arguments of 'pidns {command}'", reason, hint=hint)


def env_with(pairs: list[str], base: dict[str, str] | None = None, *,
             command: str = "run") -> dict[str, str] | None:
    """``base`` (default: our environment) with the ``K=V`` pairs set; None when there
    is nothing to change. Raises UsageError for a pair without ``=`` or key."""
    if not pairs and base is None:
        return None
    env = dict(os.environ) if base is None else dict(base)
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise _usage(command, f"--env needs KEY=VALUE, not {pair!r}",
                         hint="e.g. -e TERM=xterm")
        env[key] = value
    return env


def status_fd(text: str | None, *, command: str = "run") -> int | None:
    """The ``--json-status-fd`` value as an open fd. Raises UsageError otherwise."""
    if text is None:
        return None
    try:
        fd = int(text)
        os.fstat(fd)
    except (ValueError, OSError):
        raise _usage(command, f"--json-status-fd needs an open file descriptor, not {text!r}",
                     hint=f"see 'pidns {command} --help'") from None
    return fd


def status_line(fd: int, **fields: int | None) -> None:
    """One bwrap-style JSON line of numbers, e.g. ``{"child-pid": 42}`` (keys with
    ``_`` written with ``-``). A reader that went away does not fail the command."""
    body = ", ".join(f'"{k.replace("_", "-")}": {"null" if v is None else int(v)}'
                     for k, v in fields.items())
    data = ("{" + body + "}\n").encode()
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


def write_pid_file(path: str, pid: int) -> None:
    """Write ``pid`` to ``path`` atomically (temp file + rename). Raises PidnsError."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(f"{pid}\n")
        os.replace(tmp, path)
    except OSError as exc:
        from pidns.errors import from_oserror

        raise from_oserror(f"write the pid file {path!r}", exc) from exc


def remove_pid_file(path: str | None) -> None:
    """Remove the pid file written for a foreground run (absent is fine)."""
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass
