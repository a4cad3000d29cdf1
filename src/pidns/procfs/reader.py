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
    if n == errno.EINVAL and pid is not None:
        # A zombie's per-namespace files (mountinfo, ...) fail with EINVAL: the task has
        # dropped its namespaces already. For those files it is as good as gone.
        return NoSuchProcess(action, "the process has exited (a zombie)", pid=pid,
                             errnum=n, hint="list live ones with `pidns ps`")
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
        try:
            return _fd_relations(fd)
        finally:
            os.close(fd)

    # -- the one scan -----------------------------------------------------------------

    def nsfs_dev(self) -> int:
        """st_dev of nsfs (one superblock for every namespace), 0 in fixture trees."""
        if self._nsfs_dev is None:
            try:
                self._nsfs_dev = os.stat(f"{self.root}/self/ns/pid").st_dev
            except OSError:
                self._nsfs_dev = 0
        return self._nsfs_dev

    def snapshot(self, *, status: bool = True, cmdline: bool = True, mounts: bool = True,
                 fds: bool = False, relations: bool = True) -> Snapshot:
        """Scan /proc once: every process, every PID namespace, and what was missed.

        Per process this reads the ``ns/pid`` link text (``readlink`` is about half the
        cost of ``stat`` on nsfs; the device is the same for every namespace), plus
        ``status`` when ``status`` is true and ``cmdline`` when ``cmdline`` is true.

        With ``status=False`` (``pidns ls``) only the namespaces are complete:
        ``processes`` then holds one process per namespace, its leader (PID 1 or the
        lowest PID), whose ``status`` is read to learn the level.

        ``mounts``: find PID namespaces bind-mounted in our mount namespace
        (``self/mountinfo``). ``fds``: also find namespaces held only by an open fd (reads
        every ``/proc/PID/fd``: costly, off by default). ``relations``: parent, owner and
        PID 1 via the nsfs ioctls, one open per namespace.

        Levels count from the namespace of this /proc (absolute on the host). Where the
        ioctls fail (fixtures, EPERM) a namespace's parent is taken from its processes'
        parents: the namespace of the nearest ancestor process one level up.
        """
        problems: list[Problem] = []
        gone = unseen = 0
        root = self.root
        dev = self.nsfs_dev()
        readlink = os.readlink
        read = self._read
        parse_status = parse.parse_status
        parse_cmdline = parse.parse_cmdline
        os_open, os_read, os_close = os.open, os.read, os.close
        flags = os.O_RDONLY | os.O_CLOEXEC
        ns_cache: dict[str, NsId] = {}
        ns_of: dict[int, NsId | None] = {}
        procs: list[Process] = []

        def own_ns(pid: int) -> NsId | bool | None:
            """The link of ``pid`` itself: NsId, None (unreadable), False (gone)."""
            nonlocal gone, unseen
            try:
                text = readlink(f"{root}/{pid}/ns/pid")
                ns = ns_cache.get(text)
                if ns is None:
                    ns = ns_cache[text] = NsId(dev, parse.parse_ns_link(text)[1])
                return ns
            except OSError as exc:
                err = _error(exc, "ns/pid", pid)
                if isinstance(err, NoSuchProcess):
                    gone += 1
                    return False
                unseen += 1
                problems.append(Problem(pid, "ns/pid", _kind(err), err.reason))
            except ParseError as err:
                unseen += 1
                problems.append(Problem(pid, "ns/pid", "garbled", err.reason))
            return None

        if not status:
            for pid in self.pids():
                ns = own_ns(pid)
                if ns is not False:
                    ns_of[pid] = ns if isinstance(ns, NsId) else None
        else:
            # status (and cmdline) first; the ns/pid link only where it can differ from
            # the parent's. A process is in its parent's PID namespace or a descendant
            # of it (fork only goes down; setns(2) only to descendants; orphans go up to
            # a reaper), so with an NSpid chain as long as its parent's it is in the
            # parent's namespace: one readlink per namespace boundary, not per process.
            def grab(pid: int, name: str) -> bytes:
                # one open/read/close (runs twice per process, 10k+ times); a file
                # longer than the buffer (or an empty status) goes through _read
                try:
                    fd = os_open(f"{root}/{pid}/{name}", flags)
                    try:
                        data = os_read(fd, _BUF)
                    finally:
                        os_close(fd)
                except OSError as exc:
                    raise _error(exc, name, pid) from exc
                if len(data) == _BUF or (not data and name == "status"):
                    data = read(pid, name)
                return data

            read_ok: dict[int, tuple[Status, tuple[str, ...] | None]] = {}
            for pid in self.pids():
                try:
                    st = parse_status(grab(pid, "status"))
                    args = parse_cmdline(grab(pid, "cmdline")) if cmdline else None
                except PidnsError as exc:
                    kind = _kind(exc)
                    if kind == "gone":
                        gone += 1
                        continue
                    unseen += 1
                    problems.append(Problem(pid, "status/cmdline", kind, exc.reason))
                    continue
                read_ok[pid] = (st, args)
            dropped: set[int] = set()
            for pid in read_ok:
                chain = []
                cur = pid
                # climb while the parent is at the same level (and no zombie: its own
                # link fails, as ps and lsns see it), up to a known or a read link
                while cur not in ns_of and cur not in dropped:
                    st = read_ok[cur][0]
                    parent = read_ok.get(st.ppid)
                    # (without NSpid lines, kernels before 4.1, the lengths say nothing)
                    if (parent is not None and st.ppid != cur and st.state != "Z"
                            and st.has_nspid and parent[0].has_nspid
                            and len(parent[0].nspid) == len(st.nspid)):
                        chain.append(cur)
                        cur = st.ppid
                        continue
                    got = own_ns(cur)
                    if got is False:
                        dropped.add(cur)
                    else:
                        ns_of[cur] = got if isinstance(got, NsId) else None
                    break
                inherited = ns_of.get(cur)
                for child in reversed(chain):
                    if inherited is None:  # parent unreadable or gone: ask the child's link
                        got = own_ns(child)
                        if got is False:
                            dropped.add(child)
                            continue
                        inherited = got if isinstance(got, NsId) else None
                    ns_of[child] = inherited
            for pid, (st, args) in read_ok.items():
                if pid in ns_of:
                    procs.append(Process(pid=pid, ppid=st.ppid, name=st.name, state=st.state,
                                         uid=st.uid, nspid=st.nspid, pidns=ns_of[pid],
                                         cmdline=args))

        namespaces = (self._namespaces(procs, ns_of, relations) if status
                      else self._namespaces_light(ns_of, procs, problems, relations))
        by_pid = {p.pid: p for p in procs}
        self_ns: NsId | None
        try:
            self_ns = self.ns_id("self")
        except PidnsError:
            self_ns = None
        known = {n.id for n in namespaces}
        extra: dict[NsId, tuple[str, list[str]]] = {}
        if mounts:
            try:
                for nsid, points in parse.nsfs_mounts(self.read_mountinfo("self")).items():
                    if nsid not in known:
                        extra[nsid] = ("bind-mount", points)
            except PidnsError as exc:
                if not isinstance(exc, NoSuchProcess):  # fixture trees have no "self"
                    problems.append(Problem(None, "self/mountinfo", _kind(exc), exc.reason))
        if fds:
            self._scan_fds(list(ns_of), known, extra, problems)
        if extra:
            namespaces += self._kept_alive(extra, namespaces, relations)
        return Snapshot(processes=tuple(procs), namespaces=tuple(namespaces),
                        problems=tuple(problems), gone=gone, unseen=unseen, root=root,
                        self_ns=self_ns, by_pid=by_pid)

    def _scan_fds(self, pids: list[int], known: set[NsId],
                  extra: dict[NsId, tuple[str, list[str]]], problems: list[Problem]) -> None:
        dev = self.nsfs_dev()
        for pid in pids:
            try:
                links = self.read_fd_links(pid)
            except PidnsError as exc:
                if not isinstance(exc, NoSuchProcess):
                    problems.append(Problem(pid, "fd", _kind(exc), exc.reason))
                continue
            for fd, text in links.items():
                if not text.startswith("pid:["):
                    continue
                try:
                    nsid = NsId(dev, parse.parse_ns_link(text)[1])
                except ParseError:
                    continue
                if nsid not in known:
                    extra.setdefault(nsid, ("fd", []))[1].append(f"{pid}/fd/{fd}")

    def _ns_open(self, pids: list[int]) -> int | None:
        for pid in pids[:8]:
            try:
                return os.open(f"{self.root}/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
        return None

    def _relations_of(self, pids: list[int], relations: bool,
                      want_init: bool) -> tuple[NsId | None, NsId | None, int | None, int | None]:
        """(parent, owner, owner_uid, init pid per NS_GET_PID_FROM_PIDNS) for a namespace."""
        if not relations:
            return None, None, None, None
        fd = self._ns_open(pids)
        if fd is None:
            return None, None, None, None
        try:
            parent, owner, owner_uid = _fd_relations(fd)
            init = None
            if want_init and self.root == "/proc":
                # Linux 6.11: PID 1 of that namespace, as the caller sees it. Only
                # meaningful when /proc is the caller's own (the root checked above);
                # the caller still checks the answer against the process's NSpid.
                try:
                    init = ksys.ns_pid_from_pidns(fd, 1)
                except OSError:
                    init = None
            return parent, owner, owner_uid, init
        finally:
            os.close(fd)

    def _namespaces(self, procs: list[Process], ns_of: dict[int, NsId | None],
                    relations: bool) -> list[PidNamespace]:
        members: dict[NsId, list[Process]] = {}
        for p in procs:
            if p.pidns is not None:
                members.setdefault(p.pidns, []).append(p)
        by_pid = {p.pid: p for p in procs}
        out = []
        for ns, ps in members.items():
            # max: a status without NSpid (pre-4.1 kernel) shows a chain of one.
            level = max(len(p.nspid) for p in ps) - 1
            init = next((p.pid for p in ps if p.nspid[-1] == 1), None)
            pids = [p.pid for p in ps]
            rep = [init, *pids] if init is not None else pids
            parent, owner, owner_uid, _ = self._relations_of(rep, relations, False)
            if parent is None and level > 0:
                parent = _parent_from_tree(ps, by_pid, ns_of, level)
            out.append(PidNamespace(
                id=ns, level=level, parent=parent, owner=owner, owner_uid=owner_uid,
                pids=tuple(pids), init_pid=init, kept_alive_by="process",
            ))
        out.sort(key=_ns_order)
        return out

    def _namespaces_light(self, ns_of: dict[int, NsId | None], leaders: list[Process],
                          problems: list[Problem], relations: bool) -> list[PidNamespace]:
        # status=False: one status read per namespace (its leader) instead of per process.
        members: dict[NsId, list[int]] = {}
        for pid, ns in ns_of.items():
            if ns is not None:
                members.setdefault(ns, []).append(pid)
        found: list[tuple[NsId, list[int], Process | None, tuple[NsId | None, NsId | None,
                                                                 int | None]]] = []
        for ns, pids in members.items():
            parent, owner, owner_uid, init = self._relations_of(pids, relations, True)
            candidates = ([init] if init is not None and ns_of.get(init) == ns else [])
            candidates += pids[:4]
            lead: Process | None = None
            for pid in candidates:
                try:
                    st = self.read_status(pid)
                except PidnsError as exc:
                    if not isinstance(exc, NoSuchProcess):
                        problems.append(Problem(pid, "status", _kind(exc), exc.reason))
                    continue
                lead = Process(pid=pid, ppid=st.ppid, name=st.name, state=st.state,
                               uid=st.uid, nspid=st.nspid, pidns=ns)
                break
            if lead is not None:
                leaders.append(lead)
            found.append((ns, pids, lead, (parent, owner, owner_uid)))
        by_pid = {p.pid: p for p in leaders}
        out = []
        for ns, pids, lead, (parent, owner, owner_uid) in found:
            level = None if lead is None else len(lead.nspid) - 1
            if parent is None and lead is not None and level:
                parent = _parent_from_tree([lead], by_pid, ns_of, level)
            out.append(PidNamespace(
                id=ns, level=level, parent=parent, owner=owner, owner_uid=owner_uid,
                pids=tuple(pids),
                init_pid=lead.pid if lead is not None and lead.nspid[-1] == 1 else None,
                kept_alive_by="process",
            ))
        out.sort(key=_ns_order)
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


def _ns_order(n: PidNamespace) -> tuple[int, int]:
    return (n.level if n.level is not None else 99, n.id.ino)


def _fd_relations(fd: int) -> tuple[NsId | None, NsId | None, int | None]:
    parent = owner = None
    owner_uid = None
    try:
        pfd = ksys.ns_get_parent(fd)
        try:
            st = os.fstat(pfd)
            parent = NsId(st.st_dev, st.st_ino)
        finally:
            os.close(pfd)
    except OSError:
        pass  # EPERM: the parent is outside our view (or fd is the initial namespace)
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
    return parent, owner, owner_uid


def _parent_from_tree(members: list[Process], by_pid: dict[int, Process],
                      ns_of: dict[int, NsId | None], level: int) -> NsId | None:
    # Without NS_GET_PARENT: a member's parent process one level up (an init's launcher)
    # lives in the parent namespace. Good for fixtures; an inference, not proof.
    for p in members:
        q = by_pid.get(p.ppid)
        if q is None:
            up = ns_of.get(p.ppid)
            if up is not None and up != p.pidns and p.nspid[-1] == 1:
                return up  # status=False: the launcher was not read; an init's parent
            continue
        for _ in range(64):
            if len(q.nspid) - 1 == level - 1 and q.pidns is not None:
                return q.pidns
            nq = by_pid.get(q.ppid)
            if nq is None:
                break
            q = nq
    return None


__all__ = ["ParseError", "ProcFS"]
