"""``top``: the processes of a container (a PID namespace), with host and inner PIDs.

Everything is read from the caller's /proc (one :meth:`ProcFS.snapshot`, then ``stat``
of the members); nothing runs inside the container. A process belongs to the container
when its PID namespace is the container's or a descendant of it (what ``ps`` inside the
container would list, and what ``podman top`` shows).
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from pidns.errors import NotFound, PidnsError
from pidns.ops.nsref import NsRef
from pidns.procfs.model import NsId, Process, Snapshot, UidMapLine
from pidns.procfs.reader import ProcFS


@dataclass(frozen=True, slots=True)
class TopProcess:
    """One process of a container.

    ``hpid`` is the PID in the caller's view; ``pid`` and ``ppid`` are as the container's
    namespace sees them (``ppid`` 0 when the parent is outside it, as for its PID 1 or a
    process entered with ``exec``). ``uid``/``user`` are the real user inside the
    container (mapped through its user namespace, named from its /etc/passwd, else the
    host's). ``cputime`` is user+system CPU seconds, None when unreadable.
    """

    hpid: int
    pid: int
    ppid: int
    nspid: tuple[int, ...]
    uid: int
    user: str
    state: str
    cputime: float | None
    command: str


def _is_inside(ns: NsId | None, target: NsId, snap: Snapshot) -> bool:
    seen: set[NsId] = set()
    while ns is not None and ns not in seen:
        if ns == target:
            return True
        seen.add(ns)
        info = snap.namespace(ns)
        ns = info.parent if info is not None else None
    return False


def _passwd(procfs_root: str, pid: int) -> dict[int, str]:
    # The container's own /etc/passwd, through the magic link /proc/PID/root.
    try:
        with open(f"{procfs_root}/{pid}/root/etc/passwd", encoding="utf-8",
                  errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return {}
    out: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def _inner_uid(uid: int, uid_map: tuple[UidMapLine, ...]) -> int:
    for m in uid_map:
        if m.outside <= uid < m.outside + m.count:
            return m.inside + uid - m.outside
    return 65534  # unmapped: the overflow UID, as the kernel shows it


def _host_user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def container_processes(ref: NsRef, procfs_root: str = "/proc") -> list[TopProcess]:
    """The processes in ``ref``'s PID namespace and its descendants, by inner PID.

    Raises:
        NotFound: no process visible here is in that namespace (it is gone, or kept
            alive only by a bind mount).
    """
    procfs = ProcFS(procfs_root)
    snap = procfs.snapshot(cmdline=True, mounts=False, relations=True)
    target = ref.id
    direct = [p for p in snap.processes if p.pidns == target]
    if not direct:
        raise NotFound(f"list the processes of {ref.label()}",
                       "no process visible here is in that namespace",
                       hint="is the container running? see `pidns ls`")
    level = min(len(p.nspid) for p in direct) - 1
    members: dict[int, Process] = {
        p.pid: p for p in snap.processes
        if len(p.nspid) > level and _is_inside(p.pidns, target, snap)
    }
    rep = ref.pid if ref.pid in members else min(members)
    names = _passwd(procfs_root, rep)
    try:
        uid_map = procfs.read_uid_map(rep)
    except PidnsError:
        uid_map = (UidMapLine(0, 0, 4294967295),)
    ticks = os.sysconf("SC_CLK_TCK")
    out = []
    for p in members.values():
        parent = members.get(p.ppid)
        try:
            st = procfs.read_stat(p.pid)
            cputime: float | None = (st.utime + st.stime) / ticks
        except PidnsError:
            cputime = None
        inner_uid = _inner_uid(p.uid, uid_map)
        user = names.get(inner_uid) or _host_user(p.uid)
        out.append(TopProcess(
            hpid=p.pid, pid=p.nspid[level], ppid=parent.nspid[level] if parent else 0,
            nspid=p.nspid[level:], uid=inner_uid, user=user, state=p.state,
            cputime=cputime, command=p.command,
        ))
    out.sort(key=lambda t: t.pid)
    return out
