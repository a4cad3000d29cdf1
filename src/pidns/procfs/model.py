"""The /proc model: frozen, slotted dataclasses, no behaviour beyond small derived values.

PID views (see DESIGN.md "Words"): a bare ``pid`` is the PID as the /proc being read
sees it; ``nspid`` is the whole chain, outermost (the reader's /proc) first, exactly as
``/proc/PID/status`` prints ``NSpid:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

KeptAliveBy = Literal["process", "bind-mount", "fd"]
ProblemKind = Literal["gone", "denied", "garbled"]

#: The inode of the initial PID namespace (PROC_PID_INIT_INO in include/linux/proc_ns.h).
PROC_PID_INIT_INO: Final = 4026531836


@dataclass(frozen=True, slots=True, order=True)
class NsId:
    """A namespace's identity: the nsfs device and inode, compared on both.

    Shown as the inode alone, as lsns and ``readlink /proc/PID/ns/pid`` do.
    """

    dev: int
    ino: int

    def __str__(self) -> str:
        return str(self.ino)


@dataclass(frozen=True, slots=True)
class Status:
    """The fields of ``/proc/PID/status`` pidns uses (proc_pid_status(5))."""

    pid: int
    ppid: int
    name: str
    state: str  # one letter: R S D Z T t X I ...
    uid: int  # real UID
    nspid: tuple[int, ...]  # outermost first; (pid,) when the kernel has no NSpid line
    has_nspid: bool = True  # False on kernels before 4.1 (no NSpid line)


@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of ``/proc/PID/stat`` pidns uses (proc_pid_stat(5))."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    tty_nr: int
    utime: int  # clock ticks
    stime: int  # clock ticks
    starttime: int  # clock ticks after boot


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of ``/proc/PID/mountinfo`` (proc_pid_mountinfo(5)), the fields we use."""

    mount_id: int
    dev: int  # os.makedev(major, minor)
    root: str  # for an nsfs mount: "pid:[4026532210]"
    mount_point: str
    fstype: str
    source: str


@dataclass(frozen=True, slots=True)
class UidMapLine:
    """One line of ``/proc/PID/uid_map``: ``inside outside count``."""

    inside: int
    outside: int
    count: int


@dataclass(frozen=True, slots=True)
class Process:
    """One process as one scan of /proc saw it.

    ``pid``/``ppid`` are in the reader's view; ``nspid`` is the chain, outermost first.
    ``pidns`` is None when ``/proc/PID/ns/pid`` could not be read (EACCES): the process
    is still listed, and counted as "not visible" in the snapshot.
    """

    pid: int
    ppid: int
    name: str  # comm, at most 15 bytes
    state: str
    uid: int
    nspid: tuple[int, ...]
    pidns: NsId | None
    cmdline: tuple[str, ...] | None = None  # None: not read; () : kernel thread / zombie
    starttime: int | None = None
    cputime: int | None = None  # utime + stime, clock ticks
    tty_nr: int | None = None

    @property
    def inner_pid(self) -> int:
        """The PID as the process's own namespace sees it (last of ``nspid``)."""
        return self.nspid[-1]

    @property
    def level(self) -> int:
        """Depth of the process's namespace below the reader's /proc namespace."""
        return len(self.nspid) - 1

    @property
    def command(self) -> str:
        """The command line joined by spaces, or ``[comm]`` when there is none, as ps."""
        if self.cmdline:
            return " ".join(self.cmdline)
        return f"[{self.name}]"


@dataclass(frozen=True, slots=True)
class PidNamespace:
    """One PID namespace as a snapshot saw it.

    ``level`` is counted from the namespace of the /proc that was read (0 there). On the
    host, with /proc mounted from the initial namespace, that is the absolute level of
    pid_namespaces(7). It is None when no member process and no parent link tells it.
    ``init_pid`` is the reader-view PID of the namespace's PID 1 (the member whose last
    NSpid is 1), None when PID 1 is not visible or gone. ``pids`` are reader-view PIDs.
    """

    id: NsId
    level: int | None
    parent: NsId | None
    owner: NsId | None  # the owning user namespace
    owner_uid: int | None
    pids: tuple[int, ...]
    init_pid: int | None
    kept_alive_by: KeptAliveBy
    holders: tuple[str, ...] = ()  # bind-mount paths or "PID/fd/N" keeping it alive

    @property
    def leader_pid(self) -> int | None:
        """The PID shown for the namespace: its init, else the lowest member (as lsns)."""
        if self.init_pid is not None:
            return self.init_pid
        return min(self.pids) if self.pids else None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a scan could not see: which PID (or path), what, and why."""

    pid: int | None
    what: str  # e.g. "ns/pid", "status", "mountinfo"
    kind: ProblemKind
    reason: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One scan of /proc: every process and every PID namespace found, plus what was missed.

    ``problems`` lists per-PID failures. A process that vanished during the scan is
    dropped and counted in ``gone``; a process whose namespace is unreadable is kept with
    ``pidns=None`` and counted in ``unseen``.
    """

    processes: tuple[Process, ...]
    namespaces: tuple[PidNamespace, ...]
    problems: tuple[Problem, ...] = ()
    gone: int = 0
    unseen: int = 0
    root: str = "/proc"
    self_ns: NsId | None = None  # the reader's own PID namespace, when readable
    by_pid: dict[int, Process] = field(default_factory=dict, compare=False, repr=False)

    def process(self, pid: int) -> Process | None:
        """The process with reader-view ``pid``, or None."""
        return self.by_pid.get(pid)

    def namespace(self, ns: NsId | int) -> PidNamespace | None:
        """The namespace with that id (or bare inode), or None."""
        for n in self.namespaces:
            if n.id == ns or (isinstance(ns, int) and n.id.ino == ns):
                return n
        return None
