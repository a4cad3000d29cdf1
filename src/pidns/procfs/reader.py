"""``ProcFS(root)``: the only code that reads /proc.

Every method is named after the file it reads and maps failures the way psutil does:
ENOENT/ESRCH on ``/proc/PID/...`` (the process exited mid-read) -> :class:`NoSuchProcess`,
EACCES/EPERM -> :class:`PermissionDenied`, garbled text -> :class:`ParseError`.

``snapshot()`` is ONE pass over /proc serving ``ls``, ``ps`` and ``tree``: per process it
reads ``status`` (pid, ppid, name, state, uid and the NSpid chain are all there) and
stats ``ns/pid``; ``cmdline`` only when asked. ``stat`` is not read by a snapshot:
nothing ls/ps/tree show needs it. Per-process failures become counted
:class:`~pidns.procfs.model.Problem` records, never an exception and never a row dropped
without a count.

``root`` may point at a fixture tree (``tests/fixtures/proc/<scenario>``), in which
``PID/ns/pid`` is a symlink whose text is ``pid:[INODE]``: such a link dangles, so
:meth:`ProcFS.ns_id` falls back to its text, with ``dev`` 0.
"""

from __future__ import annotations

import errno
import os
from typing import Final

from pidns._kernel import sys as ksys
from pidns.errors import (
    NoSuchProcess,
    ParseError,
    PermissionDenied,
    PidnsError,
    from_oserror,
)
from pidns.procfs import parse
from pidns.procfs.model import (
    Mount,
    NsId,
    PidNamespace,
    Problem,
    ProblemKind,
    Process,
    Snapshot,
    Stat,
    Status,
    UidMapLine,
)

_BUF: Final = 8192
_GONE: Final = (errno.ENOENT, errno.ESRCH)
_DENIED: Final = (errno.EACCES, errno.EPERM)


def _error(exc: OSError, what: str, pid: int | None) -> PidnsError:
    n = exc.errno or 0
    action = f"read /proc/{pid if pid is not None else 'self'}/{what}"
    if n in _GONE:
        return NoSuchProcess(action, "the process has exited", pid=pid, errnum=n,
                             hint="list live ones with `pidns ps`")
    if n in _DENIED:
        return PermissionDenied(action, os.strerror(n), pid=pid, errnum=n,
                                hint="run as root to see every process")
    return from_oserror(action, exc, pid=pid)


def _kind(exc: PidnsError) -> ProblemKind:
    if isinstance(exc, NoSuchProcess):
        return "gone"
    if isinstance(exc, PermissionDenied):
        return "denied"
    return "garbled"


class ProcFS:
    """A reader over one procfs mount (default ``/proc``, or a fixture tree).

    PIDs given to and returned by it are in the view of that /proc's PID namespace.
    """

    __slots__ = ("_nsfs_dev", "root")

    def __init__(self, root: str = "/proc") -> None:
        self.root = root.rstrip("/") or "/"
        self._nsfs_dev: int | None = None

    # -- raw file access --------------------------------------------------------------

    def _read(self, pid: int | str, what: str) -> bytes:
        path = f"{self.root}/{pid}/{what}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = os.read(fd, _BUF)
                if len(data) == _BUF:
                    chunks = [data]
                    while chunk := os.read(fd, 65536):
                        chunks.append(chunk)
                    data = b"".join(chunks)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _error(exc, what, pid if isinstance(pid, int) else None) from exc
        return data

    # -- one file each ----------------------------------------------------------------

    def pids(self) -> list[int]:
        """The PIDs (thread-group leaders) in this /proc, ascending."""
        try:
            names = os.listdir(self.root)
        except OSError as exc:
            raise from_oserror(f"list {self.root}", exc,
                               hint="is procfs mounted there?") from exc
        return sorted(int(n) for n in names if n.isdigit())

    def read_status(self, pid: int) -> Status:
        """``/proc/PID/status``: pid, ppid, name, state, uid and the NSpid chain."""
        data = self._read(pid, "status")
        if not data:
            # An exiting process can leave an empty file behind.
            raise NoSuchProcess(f"read /proc/{pid}/status", "the process has exited", pid=pid)
        return parse.parse_status(data)

    def read_stat(self, pid: int) -> Stat:
        """``/proc/PID/stat``: times, tty, process group."""
        return parse.parse_stat(self._read(pid, "stat"))

    def read_cmdline(self, pid: int) -> tuple[str, ...]:
        """``/proc/PID/cmdline`` as arguments; empty for kernel threads and zombies."""
        return parse.parse_cmdline(self._read(pid, "cmdline"))

    def read_uid_map(self, pid: int) -> tuple[UidMapLine, ...]:
        """``/proc/PID/uid_map``."""
        return parse.parse_uid_map(self._read(pid, "uid_map"))

    def read_mountinfo(self, pid: int | str = "self") -> tuple[Mount, ...]:
        """``/proc/PID/mountinfo`` (``self`` by default)."""
        return parse.parse_mountinfo(self._read(pid, "mountinfo"))

    def ns_id(self, pid: int | str, nstype: str = "pid") -> NsId:
        """The namespace of ``pid`` (``/proc/PID/ns/NSTYPE``) as ``NsId(st_dev, st_ino)``.

        Raises NoSuchProcess, PermissionDenied (e.g. a VM agent's PID 1, whose ns links
        refuse even root) or ParseError.
        """
        path = f"{self.root}/{pid}/ns/{nstype}"
        ipid = pid if isinstance(pid, int) else None
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            # Fixture trees keep ns links as dangling symlinks "pid:[INODE]".
            try:
                text = os.readlink(path)
            except OSError:
                raise _error(exc, f"ns/{nstype}", ipid) from exc
            _, ino = parse.parse_ns_link(text)
            return NsId(0, ino)
        except OSError as exc:
            raise _error(exc, f"ns/{nstype}", ipid) from exc
        return NsId(st.st_dev, st.st_ino)

    def read_fd_links(self, pid: int) -> dict[int, str]:
        """``/proc/PID/fd/*``: fd number -> link text (``pid:[...]``, a path, ...)."""
        d = f"{self.root}/{pid}/fd"
        try:
            names = os.listdir(d)
        except OSError as exc:
            raise _error(exc, "fd", pid) from exc
        out = {}
        for n in names:
            try:
                out[int(n)] = os.readlink(f"{d}/{n}")
            except OSError:
                continue  # closed meanwhile
        return out

    # -- namespace links (nsfs ioctls, pid_namespaces(7), ioctl_ns(2)) ----------------

    def ns_relations(self, path: str) -> tuple[NsId | None, NsId | None, int | None]:
        """(parent PID ns, owning user ns, owner UID) of the nsfs file at ``path``.

        NS_GET_PARENT fails with EPERM when the parent lies outside the caller's view
        (the initial namespace, or an ancestor of our own namespace): that is "none
        visible", not an error. Any failure yields None for that part.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None, None, None
        parent = owner = None
        owner_uid = None
        try:
            try:
                pfd = ksys.ns_get_parent(fd)
                try:
                    st = os.fstat(pfd)
                    parent = NsId(st.st_dev, st.st_ino)
                finally:
                    os.close(pfd)
            except OSError:
                pass
            try:
                ufd = ksys.ns_get_userns(fd)
                try:
                    st = os.fstat(ufd)
                    owner = NsId(st.st_dev, st.st_ino)
                    owner_uid = ksys.ns_get_owner_uid(ufd)
                finally:
                    os.close(ufd)
            except OSError:
                pass
        finally:
            os.close(fd)
        return parent, owner, owner_uid

    # -- the one scan -----------------------------------------------------------------

    def snapshot(self, *, cmdline: bool = True, mounts: bool = True,
                 fds: bool = False, relations: bool = True) -> Snapshot:
        """Scan /proc once: every process, every PID namespace, and what was missed.

        ``cmdline``: also read each ``cmdline`` (ps, tree). ``mounts``: find PID
        namespaces bind-mounted in our mount namespace (``mountinfo`` of ``self``).
        ``fds``: also find namespaces held only by an open fd (reads every
        ``/proc/PID/fd``: costly, off by default). ``relations``: parent/owner via the
        nsfs ioctls, one open per namespace.

        Levels count from the namespace of this /proc (absolute on the host). Where the
        ioctls fail (fixtures, old kernels) a namespace's parent is taken from its
        processes' parents: the namespace of the nearest ancestor process one level up.
        """
        procs: list[Process] = []
        problems: list[Problem] = []
        gone = unseen = 0
        root = self.root
        read = self._read
        parse_status = parse.parse_status
        parse_cmdline = parse.parse_cmdline
        stat = os.stat
        ns_cache: dict[tuple[int, int], NsId] = {}
        for pid in self.pids():
            try:
                st = parse_status(read(pid, "status"))
            except PidnsError as exc:
                kind = _kind(exc)
                if kind == "gone":
                    gone += 1
                problems.append(Problem(pid, "status", kind, exc.reason))
                continue
            ns: NsId | None
            try:
                s = stat(f"{root}/{pid}/ns/pid")
                key = (s.st_dev, s.st_ino)
                ns = ns_cache.get(key)
                if ns is None:
                    ns = ns_cache[key] = NsId(s.st_dev, s.st_ino)
            except OSError:
                try:
                    ns = self.ns_id(pid)
                except PidnsError as exc:
                    kind = _kind(exc)
                    if kind == "gone":
                        gone += 1
                        problems.append(Problem(pid, "ns/pid", "gone", exc.reason))
                        continue
                    ns = None
                    unseen += 1
                    problems.append(Problem(pid, "ns/pid", kind, exc.reason))
            args: tuple[str, ...] | None = None
            if cmdline:
                try:
                    args = parse_cmdline(read(pid, "cmdline"))
                except PidnsError as exc:
                    kind = _kind(exc)
                    if kind == "gone":
                        gone += 1
                        problems.append(Problem(pid, "cmdline", "gone", exc.reason))
                        continue
                    problems.append(Problem(pid, "cmdline", kind, exc.reason))
            procs.append(Process(pid=st.pid, ppid=st.ppid, name=st.name, state=st.state,
                                 uid=st.uid, nspid=st.nspid, pidns=ns, cmdline=args))

        by_pid = {p.pid: p for p in procs}
        self_ns: NsId | None
        try:
            self_ns = self.ns_id("self")
        except PidnsError:
            self_ns = None
        namespaces = self._namespaces(procs, by_pid, relations)
        known = {n.id for n in namespaces}
        extra: dict[NsId, tuple[str, list[str]]] = {}
        if mounts:
            try:
                for nsid, points in parse.nsfs_mounts(self.read_mountinfo("self")).items():
                    if nsid not in known:
                        extra[nsid] = ("bind-mount", points)
            except PidnsError as exc:
                if not isinstance(exc, NoSuchProcess):  # fixture trees have no "self"
                    problems.append(Problem(None, "self/mountinfo", _kind(exc),
                                            exc.reason))
        if fds:
            for p in procs:
                try:
                    links = self.read_fd_links(p.pid)
                except PidnsError as exc:
                    if not isinstance(exc, NoSuchProcess):
                        problems.append(Problem(p.pid, "fd", _kind(exc),
                                                exc.reason))
                    continue
                for fd, text in links.items():
                    if not text.startswith("pid:["):
                        continue
                    try:
                        s = stat(f"{root}/{p.pid}/fd/{fd}")
                    except OSError:
                        continue
                    nsid = NsId(s.st_dev, s.st_ino)
                    if nsid not in known:
                        kept = extra.setdefault(nsid, ("fd", []))
                        kept[1].append(f"{p.pid}/fd/{fd}")
        if extra:
            namespaces += self._kept_alive(extra, namespaces, relations)
        return Snapshot(processes=tuple(procs), namespaces=tuple(namespaces),
                        problems=tuple(problems), gone=gone, unseen=unseen, root=root,
                        self_ns=self_ns, by_pid=by_pid)

    def _namespaces(self, procs: list[Process], by_pid: dict[int, Process],
                    relations: bool) -> list[PidNamespace]:
        members: dict[NsId, list[Process]] = {}
        for p in procs:
            if p.pidns is not None:
                members.setdefault(p.pidns, []).append(p)
        level_of = {ns: min(len(p.nspid) for p in ps) - 1 for ns, ps in members.items()}
        out = []
        for ns, ps in members.items():
            init = next((p.pid for p in ps if p.nspid[-1] == 1), None)
            parent = owner = None
            owner_uid = None
            if relations:
                rep = init if init is not None else ps[0].pid
                parent, owner, owner_uid = self.ns_relations(f"{self.root}/{rep}/ns/pid")
            if parent is None and level_of[ns] > 0:
                parent = _parent_from_tree(ps, by_pid, level_of[ns])
            out.append(PidNamespace(
                id=ns, level=level_of[ns], parent=parent, owner=owner, owner_uid=owner_uid,
                pids=tuple(p.pid for p in ps), init_pid=init, kept_alive_by="process",
            ))
        out.sort(key=lambda n: (n.level if n.level is not None else 99, n.id.ino))
        return out

    def _kept_alive(self, extra: dict[NsId, tuple[str, list[str]]],
                    known: list[PidNamespace], relations: bool) -> list[PidNamespace]:
        level = {n.id: n.level for n in known}
        out = []
        for nsid, (how, holders) in sorted(extra.items()):
            path = holders[0] if how == "bind-mount" else f"{self.root}/{holders[0]}"
            parent = owner = None
            owner_uid = None
            if relations:
                parent, owner, owner_uid = self.ns_relations(path)
            plevel = level.get(parent) if parent is not None else None
            out.append(PidNamespace(
                id=nsid, level=None if plevel is None else plevel + 1, parent=parent,
                owner=owner, owner_uid=owner_uid, pids=(), init_pid=None,
                kept_alive_by="bind-mount" if how == "bind-mount" else "fd",
                holders=tuple(holders),
            ))
        return out


def _parent_from_tree(members: list[Process], by_pid: dict[int, Process],
                      level: int) -> NsId | None:
    # Without NS_GET_PARENT: a member's parent process one level up (an init's launcher)
    # lives in the parent namespace. Good for fixtures and pre-4.9 kernels; not proof.
    for p in members:
        seen = 0
        q = by_pid.get(p.ppid)
        while q is not None and seen < 64:
            if len(q.nspid) - 1 == level - 1 and q.pidns is not None:
                return q.pidns
            q = by_pid.get(q.ppid)
            seen += 1
    return None


__all__ = ["ParseError", "ProcFS"]
