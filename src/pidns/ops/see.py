"""See: snapshots of processes and PID namespaces, and the process tree with boundaries.

All PIDs are in the view of the /proc that was read (the caller's namespace, by default);
``nspid`` chains are outermost first. One :meth:`ProcFS.snapshot` serves every query
here, so ``ls``, ``ps`` and ``tree`` each scan /proc once.

Container names come from an optional hook ``container_of(pid) -> str | None``; by
default ``pidns.ops.engines.container_name_for`` when that module exists. It is asked
once per namespace (with the namespace's leader PID), never once per process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pidns.errors import NotFound, PidnsError
from pidns.procfs.model import NsId, PidNamespace, Process, Snapshot
from pidns.procfs.reader import ProcFS

ContainerOf = Callable[[int], "str | None"]

__all__ = [
    "ContainerOf",
    "Containers",
    "Node",
    "build_tree",
    "default_container_of",
    "namespaces",
    "processes",
    "snapshot",
    "user_name",
    "visible_from",
]

_USERS: dict[int, str] = {}
_hook: list[ContainerOf | None] = []  # filled once: the engines hook or None


def snapshot(root: str = "/proc", *, cmdline: bool = True, fds: bool = False) -> Snapshot:
    """One scan of ``root``: processes, PID namespaces and what could not be seen.

    Raises:
        PidnsError: only if ``root`` itself cannot be listed; per-process failures are
        recorded in ``Snapshot.problems`` instead.
    """
    return ProcFS(root).snapshot(cmdline=cmdline, fds=fds)


def processes(root: str = "/proc") -> list[Process]:
    """Every process in ``root``, as ``pidns ps`` sees them (PIDs in the caller's view)."""
    return list(snapshot(root).processes)


def namespaces(root: str = "/proc", *, fds: bool = False) -> list[PidNamespace]:
    """Every PID namespace visible in ``root``, as ``pidns ls`` sees them.

    Includes namespaces with no process that a bind mount (or, with ``fds=True``, an
    open fd) keeps alive.
    """
    return list(snapshot(root, cmdline=False, fds=fds).namespaces)


def user_name(uid: int) -> str:
    """The login name of ``uid``, or the number as text (as ps does)."""
    name = _USERS.get(uid)
    if name is None:
        import pwd

        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            name = str(uid)
        _USERS[uid] = name
    return name


def default_container_of() -> ContainerOf | None:
    """The engines hook (``pidns.ops.engines.container_name_for``), or None if absent."""
    if not _hook:
        found: ContainerOf | None = None
        try:
            from pidns.ops import engines

            fn = getattr(engines, "container_name_for", None)
            found = fn if callable(fn) else None
        except ImportError:
            found = None
        _hook.append(found)
    return _hook[0]


@dataclass(slots=True)
class Containers:
    """Container names per namespace, asked of the hook once per namespace, lazily.

    The initial namespace (level 0) is never a container. Hook failures count as "no
    name": a listing must not fail because an engine is broken.
    """

    snap: Snapshot
    hook: ContainerOf | None
    _cache: dict[NsId, str | None] = field(default_factory=dict)
    _ours: dict[int, str] | None = None  # pidns's own containers: ns inode -> name

    def of_ns(self, ns: NsId | None) -> str | None:
        if ns is None or self.hook is None:
            return None
        if ns in self._cache:
            return self._cache[ns]
        if self._ours is None:
            self._ours = pidns_containers()
        name = self._ours.get(ns.ino)
        n = self.snap.namespace(ns)
        if name is None and n is not None and n.level != 0 and n.leader_pid is not None:
            try:
                name = self.hook(n.leader_pid)
            except Exception:  # noqa: BLE001 - a broken engine must not break a listing
                name = None
        self._cache[ns] = name
        return name


def pidns_containers() -> dict[int, str]:
    """PID-namespace inode -> name of each running pidns container (one store read)."""
    try:
        from pidns.ops import containers
    except ImportError:
        return {}
    try:
        return containers.running_namespaces()
    except PidnsError:
        return {}


@dataclass(slots=True)
class Node:
    """A process in the tree; ``crosses_ns`` is the namespace it enters, if its parent's
    namespace differs (a PID-namespace boundary), else None."""

    process: Process
    children: list[Node] = field(default_factory=list)
    crosses_ns: NsId | None = None

    @property
    def label(self) -> str:
        return self.process.command


def build_tree(snap: Snapshot, top: Iterable[int] | None = None) -> list[Node]:
    """The process forest of ``snap``; roots are processes whose parent is not listed.

    With ``top``, only the subtrees rooted at those PIDs (in that order).

    Raises:
        NotFound: a PID in ``top`` is not in the snapshot.
    """
    kids: dict[int, list[Process]] = {}
    for p in snap.processes:
        kids.setdefault(p.ppid, []).append(p)

    def grow(p: Process, parent_ns: NsId | None, depth: int) -> Node:
        crosses = p.pidns if p.pidns is not None and parent_ns is not None \
            and p.pidns != parent_ns else None
        node = Node(p, [], crosses)
        if depth < 400:  # a PID cycle cannot happen in one scan, but guard recursion
            node.children = [grow(c, p.pidns, depth + 1) for c in kids.get(p.pid, ())
                             if c.pid != p.pid]
        return node

    if top is None:
        roots = [p for p in snap.processes if p.ppid not in snap.by_pid or p.ppid == p.pid]
        return [grow(p, None, 0) for p in roots]
    out = []
    for pid in top:
        proc = snap.by_pid.get(pid)
        if proc is None:
            raise NotFound(f"draw the tree of pid {pid}", "no such process in this view",
                           pid=pid, hint="list live ones with `pidns ps`")
        up = snap.by_pid.get(proc.ppid)
        out.append(grow(proc, up.pidns if up else None, 0))
    return out


def visible_from(snap: Snapshot, ns: NsId) -> Callable[[Process], int | None]:
    """A function giving each process's PID as namespace ``ns`` sees it, or None.

    A namespace sees its own processes and those of its descendants, never an
    ancestor's (pid_namespaces(7)). The PID in ``ns`` is ``nspid[level(ns)]``.

    Raises:
        NotFound: ``ns`` is not among the snapshot's namespaces.
    """
    target = snap.namespace(ns)
    if target is None or target.level is None:
        raise NotFound(f"show pids as pid:[{ns.ino}] sees them",
                       "that namespace is not visible from here",
                       hint="list namespaces with `pidns ls`")
    level = target.level
    parent = {n.id: n.parent for n in snap.namespaces}
    below: dict[NsId, bool] = {ns: True}

    def inside(n: NsId | None) -> bool:
        path: list[NsId] = []
        while n is not None and n not in below and len(path) < 40:
            path.append(n)
            n = parent.get(n)
        ok = n is not None and below.get(n, False)
        for m in path:
            below[m] = ok
        return ok

    def pid_in(p: Process) -> int | None:
        if p.pidns is None or len(p.nspid) <= level or not inside(p.pidns):
            return None
        return p.nspid[level]

    return pid_in
