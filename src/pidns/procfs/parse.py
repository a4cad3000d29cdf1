"""Pure parsers for /proc files: text in, model out. No I/O, no ``os``.

Each parser is named after the file it reads and raises :class:`pidns.errors.ParseError`
and nothing else, whatever text it is given (tests feed them arbitrary bytes).
Text may be ``str`` or ``bytes`` (bytes are decoded as UTF-8 with surrogateescape, as
``os.fsdecode`` does, so no input byte is lost or rejected).
"""

from __future__ import annotations

from typing import Final

from pidns.errors import ParseError
from pidns.procfs.model import Mount, NsId, Stat, Status, UidMapLine

_ACTION: Final = "parse /proc/{}"


def _text(data: str | bytes) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "surrogateescape")
    return data


def _garbled(what: str, data: str, why: str) -> ParseError:
    return ParseError(_ACTION.format(what), f"{why} in {data[:60]!r}",
                      hint="the kernel's format differs from proc(5); report it")


def _nat(s: str) -> int:
    """A non-negative decimal integer of ASCII digits only (int() also takes '+1', ' 1')."""
    if not s or not s.isascii() or not s.isdigit() or len(s) > 20:
        raise ValueError(s)
    return int(s)


def _field(b: bytes, key: bytes, pos: int) -> tuple[bytes | None, int]:
    # ``key`` is b"\nName:"-style. The kernel prints the fields in a fixed order, so
    # search on from the previous hit, and from the start only if that misses.
    i = b.find(key, pos)
    if i < 0:
        i = b.find(key)
        if i < 0:
            return None, pos
    start = i + len(key)
    end = b.find(b"\n", start)
    if end < 0:
        end = len(b)
    return b[start:end].strip(b" \t"), end


def parse_status(data: str | bytes) -> Status:
    """Parse ``/proc/PID/status`` (proc_pid_status(5)).

    ``NSpid`` (Linux 4.1+) gives the chain, outermost first; without it the chain is
    ``(Pid,)`` and ``has_nspid`` is False. ``State`` keeps only its letter; ``Uid``
    keeps the real UID (first of four).
    """
    b = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    b = b"\n" + b  # so that "Name", the first line, is found like the others
    name, pos = _field(b, b"\nName:", 0)
    state, pos = _field(b, b"\nState:", pos)
    pid_s, pos = _field(b, b"\nPid:", pos)
    ppid_s, pos = _field(b, b"\nPPid:", pos)
    uid_s, pos = _field(b, b"\nUid:", pos)
    nspid_s, pos = _field(b, b"\nNSpid:", pos)
    if name is None or pid_s is None or ppid_s is None:
        raise _garbled("PID/status", _text(data), "no Name/Pid/PPid line")
    try:
        pid = int(pid_s)
        ppid = int(ppid_s)
        uid = int(uid_s.split()[0]) if uid_s else -1
        nspid = (pid,) if nspid_s is None else tuple(map(int, nspid_s.split()))
    except (ValueError, IndexError) as exc:
        raise _garbled("PID/status", _text(data), "bad number") from exc
    if pid < 0 or ppid < 0 or not nspid or nspid[0] != pid or min(nspid) < 0:
        raise _garbled("PID/status", _text(data), "bad Pid/PPid/NSpid")
    return Status(pid=pid, ppid=ppid, name=name.decode("utf-8", "surrogateescape"),
                  state=state[:1].decode("ascii", "replace") if state else "?", uid=uid,
                  nspid=nspid, has_nspid=nspid_s is not None)


def parse_stat(data: str | bytes) -> Stat:
    """Parse ``/proc/PID/stat`` (proc_pid_stat(5)).

    ``comm`` (field 2) is in parentheses and may itself hold spaces and ``)``, so the
    line is split at the LAST ``)``. After that split, ``rest[0]`` is field 3 (state):
    proc(5)'s field N is ``rest[N - 3]``.
    """
    text = _text(data)
    open_ = text.find("(")
    close = text.rfind(")")
    if open_ < 0 or close < open_:
        raise _garbled("PID/stat", text, "no (comm)")
    rest = text[close + 1:].split()
    try:
        return Stat(
            pid=_nat(text[:open_].strip()),
            comm=text[open_ + 1:close],
            state=rest[0][:1],
            ppid=_nat(rest[4 - 3]),
            pgrp=_nat(rest[5 - 3]),
            session=_nat(rest[6 - 3]),
            tty_nr=int(rest[7 - 3]),
            utime=_nat(rest[14 - 3]),
            stime=_nat(rest[15 - 3]),
            starttime=_nat(rest[22 - 3]),
        )
    except (ValueError, IndexError) as exc:
        raise _garbled("PID/stat", text, "missing or bad field") from exc


def parse_cmdline(data: str | bytes) -> tuple[str, ...]:
    """Parse ``/proc/PID/cmdline``: NUL-separated arguments, with a trailing NUL.

    Empty for kernel threads and zombies. A process that rewrote its argv (setproctitle)
    may leave one space-joined string without NULs: that is returned as one argument.
    """
    text = _text(data)
    if not text:
        return ()
    parts = text.split("\0")
    if parts[-1] == "":
        parts.pop()
    return tuple(parts)


def parse_ns_link(data: str | bytes) -> tuple[str, int]:
    """Parse a namespace link text, ``pid:[4026531836]`` -> ``("pid", 4026531836)``."""
    text = _text(data).strip()
    nstype, sep, rest = text.partition(":[")
    if not sep or not rest.endswith("]") or not nstype:
        raise _garbled("PID/ns/*", text, "not TYPE:[INODE]")
    try:
        return nstype, _nat(rest[:-1])
    except ValueError as exc:
        raise _garbled("PID/ns/*", text, "bad inode") from exc


def parse_uid_map(data: str | bytes) -> tuple[UidMapLine, ...]:
    """Parse ``/proc/PID/uid_map`` (user_namespaces(7)): ``inside outside count`` lines."""
    text = _text(data)
    out = []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if len(f) != 3:
            raise _garbled("PID/uid_map", text, "not three fields")
        try:
            out.append(UidMapLine(_nat(f[0]), _nat(f[1]), _nat(f[2])))
        except ValueError as exc:
            raise _garbled("PID/uid_map", text, "bad number") from exc
    return tuple(out)


def makedev(major: int, minor: int) -> int:
    """glibc's makedev(3), so a mountinfo ``MAJ:MIN`` compares equal to ``st_dev``."""
    return (((major & 0xFFFFF000) << 32) | ((major & 0xFFF) << 8)
            | ((minor & 0xFFFFFF00) << 12) | (minor & 0xFF))


def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (octal).
    if "\\" not in s:
        return s
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 3 < len(s) and all(ch in "01234567" for ch in s[i + 1:i + 4]):
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_mountinfo(data: str | bytes) -> tuple[Mount, ...]:
    """Parse ``/proc/PID/mountinfo`` (proc_pid_mountinfo(5)).

    Fields: ``ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER``.
    The optional fields end at a lone ``-``.
    """
    text = _text(data)
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        f = line.split(" ")
        try:
            sep = f.index("-", 6)
            major_s, _, minor_s = f[2].partition(":")
            out.append(Mount(
                mount_id=_nat(f[0]),
                dev=makedev(_nat(major_s), _nat(minor_s)),
                root=_unescape(f[3]),
                mount_point=_unescape(f[4]),
                fstype=f[sep + 1],
                source=_unescape(f[sep + 2]),
            ))
        except (ValueError, IndexError) as exc:
            raise _garbled("PID/mountinfo", line, "bad line") from exc
    return tuple(out)


def nsfs_mounts(mounts: tuple[Mount, ...], nstype: str = "pid") -> dict[NsId, list[str]]:
    """The namespaces of type ``nstype`` bind-mounted in ``mounts``: id -> mount points.

    An nsfs bind mount (``unshare --pid=FILE``, ``ip netns add``) has fstype ``nsfs``
    and root ``TYPE:[INODE]``.
    """
    found: dict[NsId, list[str]] = {}
    for m in mounts:
        if m.fstype != "nsfs":
            continue
        try:
            t, ino = parse_ns_link(m.root.lstrip("/"))
        except ParseError:
            continue
        if t == nstype:
            found.setdefault(NsId(m.dev, ino), []).append(m.mount_point)
    return found
