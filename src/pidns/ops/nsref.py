"""NSREF resolution: one resolver for every command that takes a namespace.

DESIGN.md "Namespace references (NSREF)" fixes the forms and the order they are tried in
(explicit forms first, so no container name can shadow them):

1. ``host``                      the caller's own PID namespace
2. ``pid:N``                     the PID namespace of process N (caller's view)
3. ``ns:INODE``                  the namespace with that nsfs inode
4. a path                        ``/proc/N/ns/pid``, a bind-mounted nsfs file, ...
5. ``ENGINE:NAME``               ``podman:``, ``docker:``, ``runc:``, ``k8s:`` (pluggable)
6. ``NAME`` / ID prefix (4+)     a pidns container (pluggable)
7. a bare inode >= 4026531836    as ``ns:INODE``

The result is an :class:`NsRef`: the namespace identity (``NsId(dev, ino)``), an open
nsfs fd for it (opened once and kept, so the translation ioctls cost one syscall each),
a representative PID in the caller's view when one is known, and the container
name/engine when the reference came from one.

Other modules plug in with :func:`register_engine` (``pidns.ops.engines``, imported
lazily on the first ``ENGINE:`` reference) and :func:`register_container_resolver`
(``pidns.ops.containers``, imported lazily on the first bare name).
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import InitVar, dataclass, field
from importlib import import_module
from typing import Final

from pidns._kernel import consts
from pidns._kernel import sys as ksys
from pidns.errors import NoSuchProcess, NotFound, PidnsError, UsageError
from pidns.procfs import parse
from pidns.procfs.model import PROC_PID_INIT_INO, NsId
from pidns.procfs.reader import ProcFS

PROC: Final = "/proc"

#: Engines DESIGN.md names; a reference ``X:...`` with another X is still tried against
#: the registry (a plug-in may add one), and is an error if nothing claims it.
KNOWN_ENGINES: Final = ("podman", "docker", "runc", "k8s")

#: Container names (DESIGN.md): not all digits, not ``host``.
NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MIN_ID_PREFIX: Final = 4

_ENGINE_WORD_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_PROC_NS_RE: Final = re.compile(r"/proc/(\d+)/ns/pid(?:_for_children)?")


class _FdBox:
    """The one owner of an NsRef's fd: closed once, by close() or by the finalizer
    (never a stale number that may by then belong to another file)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass(eq=False)
class NsRef:
    """A resolved PID namespace reference.

    ``id`` is the namespace identity. ``pid`` is a representative process in it, in
    the caller's view (for ``pid:N`` that is N; for a container its PID 1), or None
    when none is known (a namespace kept alive only by a bind mount). ``spec`` is the
    NSREF as given, ``kind`` which form matched. ``container``/``engine`` are set when
    the reference named a container (``engine`` is ``"pidns"`` for our own).

    The nsfs fd behind :meth:`fd` is opened at resolution and kept until :meth:`close`
    (or garbage collection): holding it pins the namespace, so the identity cannot be
    reused while the reference is alive.
    """

    id: NsId
    spec: str
    kind: str
    pid: int | None = None
    path: str | None = None
    container: str | None = None
    engine: str | None = None
    _fd: InitVar[int | None] = None
    _box: _FdBox = field(init=False, repr=False)
    _is_caller: bool | None = field(default=None, repr=False)
    _ancestry: tuple[NsId, ...] | None = field(default=None, repr=False)

    def __post_init__(self, _fd: int | None) -> None:
        self._box = _FdBox(_fd)
        weakref.finalize(self, self._box.close)

    @property
    def ino(self) -> int:
        """The nsfs inode, as lsns and ``readlink /proc/PID/ns/pid`` show it."""
        return self.id.ino

    def fd(self) -> int:
        """An open nsfs fd for the namespace (opened on first use, then cached).

        Raises:
            NotFound: the namespace has no process, bind mount or fd left to open it by.
        """
        fd = self._box.fd
        if fd is None:
            fd = _open_by_id(self.id, self.pid, self.path)
            if fd is None:
                raise NotFound(f"open {self.label()}", "the namespace is gone",
                               hint="list live namespaces with `pidns ls`")
            self._box.fd = fd
        return fd

    def is_caller(self) -> bool:
        """Whether this is the caller's own PID namespace (``host``)."""
        if self._is_caller is None:
            self._is_caller = self.id == caller_ns_id()
        return self._is_caller

    def ancestry(self) -> tuple[NsId, ...]:
        """This namespace, its parent, ... up to the caller's namespace (cached).

        The chain stops early (its last entry is not the caller's namespace) when this
        namespace is not the caller's or below it: NS_GET_PARENT refuses (EPERM) to
        show a parent outside the caller's view. See :func:`ancestry_of_fd`.
        """
        if self._ancestry is None:
            self._ancestry = ancestry_of_fd(self.fd())
        return self._ancestry

    def label(self) -> str:
        """``pid:[INO]``, plus the container as ``(engine:name)`` when known."""
        base = f"pid:[{self.id.ino}]"
        if self.container is None:
            return base
        who = self.container
        if self.engine not in (None, "pidns"):
            who = f"{self.engine}:{who}"
        return f"{base} ({who})"

    def close(self) -> None:
        """Close the cached fd (the reference stays usable: it reopens on demand)."""
        self._box.close()

    def __enter__(self) -> NsRef:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __str__(self) -> str:
        return self.label()


# ---------------------------------------------------------------- plug-in registries

EngineResolver = Callable[[str], NsRef]
"""``fn(rest)`` for ``ENGINE:rest``: returns an NsRef (see :func:`from_pid`) or raises
NotFound saying what it tried."""

ContainerResolver = Callable[[str], "NsRef | None"]
"""``fn(name_or_id_prefix)``: the container's NsRef, None when nothing matches, or
NotFound when a prefix is ambiguous."""

NsLabeler = Callable[[NsId], "tuple[str, str] | None"]
"""``fn(nsid)``: ``(engine, container name)`` owning that namespace, or None."""

_ENGINES: dict[str, EngineResolver] = {}
_CONTAINER_RESOLVERS: list[ContainerResolver] = []
_LABELERS: list[NsLabeler] = []
_PLUGIN_MODULES: Final = {"engines": "pidns.ops.engines", "containers": "pidns.ops.containers"}
_tried_import: set[str] = set()


def register_engine(prefix: str, resolver: EngineResolver) -> None:
    """Make ``PREFIX:REST`` references resolve through ``resolver(REST)``."""
    _ENGINES[prefix.lower()] = resolver


def register_container_resolver(resolver: ContainerResolver) -> None:
    """Add a resolver for bare container names and ID prefixes (tried in order)."""
    if resolver not in _CONTAINER_RESOLVERS:
        _CONTAINER_RESOLVERS.append(resolver)


def register_ns_labeler(labeler: NsLabeler) -> None:
    """Add a reverse lookup: namespace -> (engine, container), used by ``translate -a``."""
    if labeler not in _LABELERS:
        _LABELERS.append(labeler)


def _load_plugin(which: str) -> None:
    # Importing the module registers its resolvers (at import time, by convention).
    # A missing module is not an error: that engine is simply not available yet.
    if which in _tried_import:
        return
    _tried_import.add(which)
    try:
        import_module(_PLUGIN_MODULES[which])
    except ModuleNotFoundError as exc:
        if exc.name != _PLUGIN_MODULES[which]:
            raise


def container_of(nsid: NsId) -> tuple[str, str] | None:
    """``(engine, name)`` of the container owning ``nsid``, as far as plug-ins know."""
    for which in ("containers", "engines"):
        _load_plugin(which)
    for labeler in _LABELERS:
        try:
            got = labeler(nsid)
        except PidnsError:
            continue
        if got is not None:
            return got
    return None


# ---------------------------------------------------------------- identity helpers

def _nsid_of_fd(fd: int) -> NsId:
    st = os.fstat(fd)
    return NsId(st.st_dev, st.st_ino)


def ancestry_of_fd(fd: int) -> tuple[NsId, ...]:
    """The PID namespace behind ``fd``, then its parent, ... innermost first.

    NS_GET_PARENT (Linux 4.9, ioctl_ns(2)) answers only while the parent is the
    caller's namespace or below it, so the chain ends at the caller's namespace for a
    namespace below ours, and at once for one above or beside it.
    """
    out = [_nsid_of_fd(fd)]
    cur = fd
    try:
        while True:
            try:
                parent = ksys.ns_get_parent(cur)
            except OSError:
                break  # EPERM: the parent is outside our view (or this is the top)
            if cur != fd:
                os.close(cur)
            cur = parent
            out.append(_nsid_of_fd(cur))
    finally:
        if cur != fd:
            os.close(cur)
    return tuple(out)


_caller_ns: tuple[int, NsId] | None = None  # (getpid() when cached, id)


def caller_ns_id() -> NsId:
    """The identity of the caller's own PID namespace (``/proc/self/ns/pid``).

    Cached per process: a process's active PID namespace never changes (setns(2) and
    unshare(2) with CLONE_NEWPID change only where its *children* go;
    pid_namespaces(7)), but a forked child may live elsewhere, hence the PID key.
    """
    global _caller_ns
    me = os.getpid()
    if _caller_ns is None or _caller_ns[0] != me:
        st = os.stat(f"{PROC}/self/ns/pid")
        _caller_ns = (me, NsId(st.st_dev, st.st_ino))
    return _caller_ns[1]


def _open_pidns(path: str) -> int:
    """Open ``path`` and check that it is a PID-namespace nsfs file; return the fd."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nstype = ksys.ns_get_nstype(fd)
    except OSError as exc:
        os.close(fd)
        raise UsageError(f"use {path} as a namespace",
                         "not an nsfs namespace file",
                         hint="give /proc/PID/ns/pid or a bind mount of one") from exc
    if nstype != consts.CLONE_NEWPID:
        os.close(fd)
        raise UsageError(f"use {path} as a PID namespace",
                         f"it is another type of namespace (CLONE flag {nstype:#x})",
                         hint="give /proc/PID/ns/pid or a bind mount of one")
    return fd


def from_pid(pid: int, *, spec: str | None = None, kind: str = "pid",
             container: str | None = None, engine: str | None = None) -> NsRef:
    """The namespace of process ``pid`` (caller's view), with its fd open.

    Engines and containers use this to build their NsRef from a host PID.

    Raises:
        NotFound: no such process, or its ns/pid cannot be opened (EACCES: "not
            visible", exit status 1, as DESIGN.md asks for a target that cannot be seen).
    """
    path = f"{PROC}/{pid}/ns/pid"
    spec = spec if spec is not None else f"pid:{pid}"
    try:
        fd = _open_pidns(path)
    except FileNotFoundError as exc:
        raise NotFound(f"resolve {spec!r}", f"no process {pid} in the caller's namespace",
                       pid=pid, hint="list processes with `pidns ps`") from exc
    except PermissionError as exc:
        raise NotFound(f"resolve {spec!r}",
                       f"not visible: cannot open {path}: {exc.strerror}",
                       pid=pid, errnum=exc.errno,
                       hint="run as root, or as the owner of the process") from exc
    except OSError as exc:
        raise NoSuchProcess(f"resolve {spec!r}", f"{path}: {exc.strerror}", pid=pid,
                            errnum=exc.errno) from exc
    return NsRef(_nsid_of_fd(fd), spec, kind, pid=pid, path=path, container=container,
                 engine=engine, _fd=fd)


_host: NsRef | None = None


def host() -> NsRef:
    """The caller's own PID namespace (one shared, cached NsRef: see caller_ns_id)."""
    global _host
    if _host is None or _host.pid != os.getpid():  # re-made in a forked child
        fd = _open_pidns(f"{PROC}/self/ns/pid")
        _host = NsRef(_nsid_of_fd(fd), "host", "host", pid=os.getpid(),
                      path=f"{PROC}/self/ns/pid", _fd=fd, _is_caller=True)
    return _host


# ---------------------------------------------------------------- finding an inode

def _nsfs_mounts() -> Iterator[tuple[int, str]]:
    """(inode, mount point) of each PID-namespace nsfs bind mount we can see."""
    try:
        mounts = _procfs().read_mountinfo("self")
    except PidnsError:
        return
    for nsid, points in parse.nsfs_mounts(mounts).items():
        for point in points:
            yield nsid.ino, point


def _procfs() -> ProcFS:
    return ProcFS(PROC)


def _proc_pids() -> list[int]:
    try:
        return _procfs().pids()
    except PidnsError:
        return []


def _find_ino(ino: int) -> tuple[int, NsId, int | None, str] | None:
    """Look for an open-able nsfs file for inode ``ino``.

    Tried in order: /proc/*/ns/pid (the lowest PID is kept as the representative),
    nsfs bind mounts in /proc/self/mountinfo, then open fds under /proc/*/fd.
    Returns (fd, id, representative pid, path) or None. EACCES entries are skipped.
    """
    for pid in _proc_pids():
        path = f"{PROC}/{pid}/ns/pid"
        try:
            if os.stat(path).st_ino != ino:
                continue
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        got = _nsid_of_fd(fd)
        if got.ino == ino:
            return fd, got, pid, path
        os.close(fd)  # the process died and its PID was reused between stat and open
    for mino, point in _nsfs_mounts():
        if mino != ino:
            continue
        try:
            fd = os.open(point, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        return fd, _nsid_of_fd(fd), None, point
    for pid in _proc_pids():
        try:
            links = _procfs().read_fd_links(pid)
        except PidnsError:
            continue
        for num, text in links.items():
            if text != f"pid:[{ino}]":
                continue
            path = f"{PROC}/{pid}/fd/{num}"
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            return fd, _nsid_of_fd(fd), None, path
    return None


def _open_by_id(nsid: NsId, pid: int | None, path: str | None) -> int | None:
    """Reopen a namespace by identity, trying its last known path and PID first."""
    for cand in (path, f"{PROC}/{pid}/ns/pid" if pid is not None else None):
        if cand is None:
            continue
        try:
            fd = os.open(cand, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        if _nsid_of_fd(fd) == nsid:
            return fd
        os.close(fd)
    found = _find_ino(nsid.ino)
    if found is None:
        return None
    fd, got, _, _ = found
    if got != nsid:
        os.close(fd)
        return None
    return fd


def from_inode(ino: int, *, spec: str | None = None, kind: str = "ns") -> NsRef:
    """The PID namespace with nsfs inode ``ino``, found through a process, bind mount or fd.

    Raises:
        NotFound: nothing the caller can see holds that namespace.
    """
    spec = spec if spec is not None else f"ns:{ino}"
    found = _find_ino(ino)
    if found is None:
        raise NotFound(
            f"resolve {spec!r}",
            f"no process, nsfs bind mount or open fd visible here is in pid:[{ino}] "
            "(tried /proc/*/ns/pid, /proc/self/mountinfo, /proc/*/fd)",
            hint="list namespaces with `pidns ls`; run as root to see every process",
        )
    fd, nsid, pid, path = found
    return NsRef(nsid, spec, kind, pid=pid, path=path, _fd=fd)


def from_path(path: str, *, spec: str | None = None) -> NsRef:
    """The PID namespace behind an nsfs file (``/proc/N/ns/pid``, a bind mount).

    Raises:
        NotFound: no such file. UsageError: not a PID-namespace file.
    """
    spec = spec if spec is not None else path
    try:
        fd = _open_pidns(path)
    except FileNotFoundError as exc:
        raise NotFound(f"resolve {spec!r}", f"{path} does not exist",
                       hint="give /proc/PID/ns/pid or a bind-mounted nsfs file") from exc
    except PermissionError as exc:
        raise NotFound(f"resolve {spec!r}", f"not visible: cannot open {path}: {exc.strerror}",
                       errnum=exc.errno,
                       hint="run as root, or as the owner of the process") from exc
    except OSError as exc:
        raise NotFound(f"resolve {spec!r}", f"cannot open {path}: {exc.strerror}",
                       errnum=exc.errno) from exc
    m = _PROC_NS_RE.fullmatch(os.path.normpath(path))
    rep = int(m.group(1)) if m else None
    if path.startswith(f"{PROC}/self/") or path.startswith(f"{PROC}/thread-self/"):
        rep = os.getpid()
    return NsRef(_nsid_of_fd(fd), spec, "path", pid=rep, path=path, _fd=fd)


# ---------------------------------------------------------------- the resolver

def parse_int(text: str, what: str, spec: str) -> int:
    """A decimal integer from an NSREF, or UsageError naming the form."""
    if not text.isdigit():
        raise UsageError(f"resolve {spec!r}", f"{what} must be a decimal number, not {text!r}",
                         hint="NSREF forms: host, pid:N, ns:INODE, PATH, ENGINE:NAME, NAME")
    return int(text)


def classify(ref: str) -> str:
    """Which NSREF form ``ref`` is, without resolving it (pure; used by tests and help).

    One of ``host``, ``pid``, ``ns``, ``path``, ``engine``, ``container``, ``inode``,
    ``container-or-inode`` (all digits and >= the first inode: a container ID prefix is
    tried first, then the inode), or ``invalid``.
    """
    if ref == "host":
        return "host"
    head, sep, _ = ref.partition(":")
    if sep and head == "pid":
        return "pid"
    if sep and head == "ns":
        return "ns"
    # A path: absolute, ./ or ../, or any "/" not preceded by an ENGINE: word
    # (k8s:NAMESPACE/POD carries slashes; write ./k8s:x/y for such a relative path).
    if ref.startswith(("/", "./", "../")) or ref in (".", ".."):
        return "path"
    if sep and _ENGINE_WORD_RE.fullmatch(head):
        return "engine"
    if "/" in ref:
        return "path"
    if sep:
        return "invalid"
    if ref.isdigit():
        if int(ref) >= PROC_PID_INIT_INO:
            return "container-or-inode"
        return "container" if len(ref) >= MIN_ID_PREFIX else "invalid"
    if NAME_RE.fullmatch(ref):
        return "container"
    return "invalid"


_FORMS: Final = ("host, pid:N, ns:INODE, a path to an nsfs file, podman:/docker:/runc:/k8s:NAME, "
                 "a pidns container name or ID prefix (4+), a bare inode >= "
                 f"{PROC_PID_INIT_INO}")


def _resolve_engine(ref: str) -> NsRef:
    prefix, _, rest = ref.partition(":")
    key = prefix.lower()
    if key not in _ENGINES:
        _load_plugin("engines")
    resolver = _ENGINES.get(key)
    if resolver is None:
        known = sorted(set(_ENGINES) | set(KNOWN_ENGINES))
        if key in KNOWN_ENGINES:
            reason = (f"{prefix}: references need pidns.ops.engines, which is not "
                      "available in this installation")
        else:
            reason = f"unknown engine {prefix!r} (known: {', '.join(known)})"
        raise NotFound(f"resolve {ref!r}", reason, hint=f"NSREF forms: {_FORMS}")
    if not rest:
        raise UsageError(f"resolve {ref!r}", f"no container named after '{prefix}:'",
                         hint=f"e.g. {prefix}:NAME")
    return resolver(rest)


def _resolve_container(ref: str) -> NsRef | None:
    _load_plugin("containers")
    for resolver in _CONTAINER_RESOLVERS:
        got = resolver(ref)
        if got is not None:
            return got
    return None


def resolve(ref: str | NsRef) -> NsRef:
    """Resolve an NSREF string (DESIGN.md order); an NsRef is returned as it is.

    Raises:
        NotFound: nothing matches, or a container ID prefix matches several; the message
            says which forms were tried.
        UsageError: a malformed form (``pid:abc``, an empty reference).
        (A namespace that exists but cannot be opened by this user is NotFound too,
        with ``errnum`` EACCES: it "cannot be seen".)
    """
    if isinstance(ref, NsRef):
        return ref
    ref = ref.strip()
    kind = classify(ref)
    if not ref:
        raise UsageError("resolve ''", "empty namespace reference", hint=f"NSREF forms: {_FORMS}")
    if kind == "host":
        return host()
    if kind == "pid":
        return from_pid(parse_int(ref[4:], "the PID in pid:N", ref), spec=ref)
    if kind == "ns":
        return from_inode(parse_int(ref[3:], "the inode in ns:INODE", ref), spec=ref)
    if kind == "path":
        return from_path(ref)
    if kind == "engine":
        return _resolve_engine(ref)
    tried = ["host", "pid:N", "ns:INODE", "path"]
    if kind in ("container", "container-or-inode"):
        got = _resolve_container(ref)
        if got is not None:
            return got
        tried.append("pidns container name/ID prefix"
                     + ("" if _CONTAINER_RESOLVERS else " (no container store available)"))
    if kind == "container-or-inode":
        tried.append("bare inode")
        found = _find_ino(int(ref))
        if found is not None:
            fd, nsid, pid, path = found
            return NsRef(nsid, ref, "inode", pid=pid, path=path, _fd=fd)
    if ref.isdigit() and int(ref) < PROC_PID_INIT_INO:
        hint = f"for the namespace of process {ref}, write pid:{ref}"
    else:
        hint = f"NSREF forms: {_FORMS}"
    raise NotFound(f"resolve {ref!r}", f"no namespace matches (tried: {', '.join(tried)})",
                   hint=hint)
