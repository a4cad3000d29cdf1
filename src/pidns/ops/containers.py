"""Named, detached containers: ``pidns run -d`` and the state behind list/inspect/stop/rm.

State lives under ``/run/pidns`` (root), ``$XDG_RUNTIME_DIR/pidns`` (rootless), or
``$PIDNS_STATE_DIR`` (``pidns --state-dir DIR``). Without XDG_RUNTIME_DIR a rootless
caller falls back to ``/tmp/pidns-UID`` (tmux's scheme), which must be a directory
owned by the caller, as every state directory must. Layout::

    STATE/.lock            flock(2): creating (name uniqueness) and removing entries
    STATE/<ID>/config.json the container: command, options, PIDs, namespace inodes
    STATE/<ID>/exit.json   written by the waiter (pidns-monitor) when PID 1 exits
    STATE/<ID>/log         the container's stdout and stderr

Every file is written atomically (temp file, fsync, rename, fsync of the directory)
and opened relative to a directory fd with O_NOFOLLOW; directories are 0700. A
corrupt entry is reported for that container alone (status ``unknown``).

The waiter: the CLI double-forks a child B (new session, stdio on /dev/null), B
clones the container's PID 1 (so B is its parent), records it, and execs the small C
program ``pidns-monitor``, which inherits PID 1 as its child, waits for it and writes
``exit.json`` through the state directory's fd. Truth does not depend on the waiter:
a container is running when a pidfd of the recorded PID 1 is open-able, its start
time matches and its ``/proc/PID/ns/pid`` is the namespace inode recorded at start;
when PID 1 is gone and no ``exit.json`` was written, it exited with status unknown.

PIDs here are in the caller's (host's) view unless named otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import select
import signal
import time
from collections.abc import Iterator
from typing import Any, Final, NamedTuple, Protocol

from pidns._kernel import consts
from pidns._kernel import spawn as kspawn
from pidns._kernel import sys as ksys
from pidns.errors import (
    ExitStatus,
    NotFound,
    PermissionDenied,
    PidnsError,
    Refused,
    UsageError,
    from_oserror,
)
from pidns.ops import nsref, runopts
from pidns.procfs.model import NsId

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pidns.ops.spawn import Process

ID_RE: Final = re.compile(r"[0-9a-f]{64}")
NAME_RE: Final = nsref.NAME_RE
MIN_PREFIX: Final = nsref.MIN_ID_PREFIX
MONITOR_PATH: Final = os.path.join(os.path.dirname(kspawn.__file__), "pidns-monitor")
NS_TYPES: Final = ("pid", "mnt", "user", "uts", "ipc", "net", "cgroup", "time")
NAMES_DIR: Final = ".names"
ZERO_TIME: Final = "0001-01-01T00:00:00Z"  # docker's FinishedAt for "never"
DEFAULT_STOP_SIGNAL: Final = "SIGTERM"

_O_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_READ: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_WRITE: Final = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class RunSpec(Protocol):
    """What :func:`run_detached` needs of ``pidns run``'s parsed options (cli.RunArgs)."""

    init: bool
    user: bool
    no_mount_proc: bool
    rootfs: str | None
    hostname: str | None
    workdir: str | None
    pid_file: str | None
    json_status_fd: str | None
    name: str | None
    stop_signal: str | None
    cmd: list[str]


# ---------------------------------------------------------------- small helpers

def _now_ns() -> int:
    return time.time_ns()


def rfc3339(ns: int) -> str:
    """Epoch nanoseconds as docker prints times: RFC 3339, UTC, nanoseconds."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def starttime(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot), None if the PID is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _ns_ino(pid: int, kind: str = "pid") -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def parse_signal(text: str, *, action: str = "parse the signal") -> signal.Signals:
    """``TERM``, ``SIGTERM``, ``sigterm`` or ``15`` -> the signal.

    Raises:
        UsageError: not a signal name or number.
    """
    t = text.strip()
    try:
        if t.isdigit():
            return signal.Signals(int(t))
        name = t.upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        raise UsageError(action, f"{text!r} is not a signal",
                         hint="give a name (TERM, SIGKILL) or a number (15)") from None


def validate_name(name: str) -> None:
    """Check a container name against DESIGN.md's rule.

    Raises:
        UsageError: ``[A-Za-z0-9][A-Za-z0-9_.-]*``, not all digits, not ``host``.
    """
    if not NAME_RE.fullmatch(name) or name.isdigit() or name == "host":
        raise UsageError(f"use {name!r} as a container name",
                         "names match [A-Za-z0-9][A-Za-z0-9_.-]*, are not all digits, "
                         "and are not 'host'", hint="e.g. --name web-1")


# ---------------------------------------------------------------- the store

def default_root() -> str:
    """The state directory to use (see the module docstring)."""
    given = os.environ.get("PIDNS_STATE_DIR")
    if given:
        return os.path.abspath(given)
    if os.geteuid() == 0:
        return "/run/pidns"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "pidns")
    return f"/tmp/pidns-{os.geteuid()}"


def _write_json(dirfd: int, name: str, obj: object) -> None:
    """Write ``name`` in ``dirfd`` atomically: temp file, fsync, rename, fsync dir."""
    tmp = f".{name}.{os.getpid()}.tmp"
    data = (json.dumps(obj, indent=1) + "\n").encode()
    fd = os.open(tmp, _O_WRITE, 0o600, dir_fd=dirfd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dirfd)
        raise
    os.close(fd)
    os.rename(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    os.fsync(dirfd)


def _read_json(dirfd: int, name: str) -> Any:
    """The JSON in ``name`` (O_NOFOLLOW); FileNotFoundError if absent, ValueError if bad."""
    fd = os.open(name, _O_READ, dir_fd=dirfd)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return json.loads(b"".join(chunks))


class Store:
    """The state directory: one subdirectory per container, an flock for changes.

    Raises (from :meth:`open`):
        PermissionDenied: the directory is owned by another user, or is a symlink.
        PidnsError: it cannot be created or opened.
    """

    def __init__(self, root: str, fd: int) -> None:
        self.root = root
        self.fd = fd

    @classmethod
    def open(cls, root: str | None = None, *, create: bool = True) -> Store:
        """Open (and with ``create``, make 0700) the state directory ``root``."""
        root = root if root is not None else default_root()
        action = f"use the state directory {root}"
        if create:
            try:
                os.makedirs(os.path.dirname(root) or "/", exist_ok=True)
                os.mkdir(root, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise from_oserror(action, exc, hint="pick another with --state-dir DIR "
                                   "(or PIDNS_STATE_DIR)") from exc
        try:
            fd = os.open(root, _O_DIR)
        except FileNotFoundError:
            raise NotFound(action, "it does not exist (no container was ever started here)",
                           hint="start one with `pidns run -d`") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PermissionDenied(action, "it is a symlink or not a directory",
                                       hint="remove it, or pick another with --state-dir") \
                    from exc
            raise from_oserror(action, exc) from exc
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            os.close(fd)
            raise PermissionDenied(
                action, f"it is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): "
                "another user's state is not trusted",
                hint="use your own with --state-dir DIR (or PIDNS_STATE_DIR)")
        return cls(root, fd)

    def close(self) -> None:
        """Close the directory fd."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's exclusive flock for the block."""
        try:
            fd = os.open(".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self.fd)
        except OSError as exc:
            raise from_oserror(f"lock the state directory {self.root}", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def ids(self) -> list[str]:
        """The container IDs present (directory names of 64 hex digits)."""
        try:
            names = os.listdir(self.fd)
        except OSError as exc:
            raise from_oserror(f"list the state directory {self.root}", exc) from exc
        return sorted(n for n in names if ID_RE.fullmatch(n))

    def open_entry(self, cid: str) -> int:
        """An fd of the container's directory (O_NOFOLLOW); FileNotFoundError if gone."""
        return os.open(cid, _O_DIR, dir_fd=self.fd)

    def load(self, cid: str) -> Container:
        """The container ``cid`` as recorded, with its status computed now.

        A missing or corrupt config.json gives a Container with status ``unknown`` and
        ``error`` saying why (never an exception: one bad entry must not hide others).
        """
        try:
            dfd = self.open_entry(cid)
        except OSError as exc:
            return Container(cid, None, {}, status="unknown",
                             error=f"cannot open {self.root}/{cid}: {exc.strerror}")
        try:
            return _load(self.root, cid, dfd)
        finally:
            os.close(dfd)

    def name_of(self, cid: str) -> str | None:
        """The recorded name of ``cid`` (reads config.json only; None when unreadable)."""
        try:
            dfd = self.open_entry(cid)
        except OSError:
            return None
        try:
            conf = _read_json(dfd, "config.json")
        except (OSError, ValueError):
            return None
        finally:
            os.close(dfd)
        name = conf.get("name") if isinstance(conf, dict) else None
        return name if isinstance(name, str) else None

    def all(self) -> list[Container]:
        """Every container, oldest first."""
        out = [self.load(cid) for cid in self.ids()]
        out.sort(key=lambda c: (c.created_ns, c.id))
        return out

    # The name index: STATE/.names/NAME is a symlink whose target text is the ID (never
    # followed, only read with readlink), so `inspect NAME` needs no scan. The entries'
    # config.json stay the truth: a stale or missing link falls back to a scan.

    def link_name(self, name: str, cid: str) -> None:
        """Point the index's NAME at ``cid`` (call under :meth:`lock`)."""
        try:
            os.mkdir(NAMES_DIR, 0o700, dir_fd=self.fd)
        except FileExistsError:
            pass
        nfd = os.open(NAMES_DIR, _O_DIR, dir_fd=self.fd)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=nfd)
            os.symlink(cid, name, dir_fd=nfd)
        finally:
            os.close(nfd)

    def lookup_name(self, name: str) -> str | None:
        """The ID the index gives for ``name`` (unchecked), or None."""
        if not NAME_RE.fullmatch(name):
            return None
        try:
            nfd = os.open(NAMES_DIR, _O_DIR, dir_fd=self.fd)
        except OSError:
            return None
        try:
            got = os.readlink(name, dir_fd=nfd)
        except OSError:
            return None
        finally:
            os.close(nfd)
        return got if ID_RE.fullmatch(got) else None

    def _unlink_name(self, name: str | None, cid: str) -> None:
        if name is None or self.lookup_name(name) != cid:
            return
        with contextlib.suppress(OSError):
            nfd = os.open(NAMES_DIR, _O_DIR, dir_fd=self.fd)
            try:
                os.unlink(name, dir_fd=nfd)
            finally:
                os.close(nfd)

    def remove(self, cid: str) -> None:
        """Delete the entry: renamed away under the lock (atomic for readers), then emptied."""
        trash = f".rm-{cid}-{os.getpid()}"
        name = self.name_of(cid)
        with self.lock():
            self._unlink_name(name, cid)
            try:
                os.rename(cid, trash, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            except FileNotFoundError:
                return
        try:
            dfd = os.open(trash, _O_DIR, dir_fd=self.fd)
        except OSError as exc:
            raise from_oserror(f"remove the state of {cid[:12]}", exc) from exc
        try:
            for _ in range(50):
                for name in os.listdir(dfd):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=dfd)
                try:
                    os.rmdir(trash, dir_fd=self.fd)
                    return
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise from_oserror(f"remove the state of {cid[:12]}", exc) from exc
                time.sleep(0.01)  # a waiter still finishing its exit.json
        finally:
            os.close(dfd)


# ---------------------------------------------------------------- one container

class Container:
    """A container as recorded in the store, with its status as of loading.

    ``status`` is ``running``, ``exited``, ``created`` (being started) or ``unknown``
    (the entry is corrupt; ``error`` says why). ``exit_code`` is None while running,
    and when it exited without its waiter recording a status.
    """

    # a plain class, not a dataclass: building one costs ~5 ms of start-up
    __slots__ = ("config", "error", "exit_code", "finished_at", "id", "name", "status")

    def __init__(self, cid: str, name: str | None, config: dict[str, Any], *,
                 status: str = "unknown", error: str | None = None) -> None:
        self.id = cid
        self.name = name
        self.config = config
        self.status = status
        self.exit_code: int | None = None
        self.finished_at: str | None = None
        self.error = error

    def __repr__(self) -> str:
        return f"Container({self.id[:12]}, {self.name!r}, {self.status_text()})"

    @property
    def created_ns(self) -> int:
        """Creation time, epoch nanoseconds (0 when unknown)."""
        v = self.config.get("created_ns")
        return v if isinstance(v, int) else 0

    @property
    def pid(self) -> int | None:
        """Host PID of the container's PID 1 while running."""
        v = self.config.get("pid")
        return v if isinstance(v, int) and self.status == "running" else None

    @property
    def command_pid(self) -> int | None:
        """Host PID of the command (== pid unless --init or --nest) while running."""
        v = self.config.get("command_pid")
        return v if isinstance(v, int) and self.status == "running" else None

    @property
    def pidns(self) -> int | None:
        """The inode of the PID namespace the command runs in."""
        ns = self.config.get("namespaces")
        v = ns.get("pid") if isinstance(ns, dict) else None
        return v if isinstance(v, int) else None

    @property
    def cmd(self) -> list[str]:
        """The command as given."""
        v = self.config.get("cmd")
        return [str(x) for x in v] if isinstance(v, list) else []

    @property
    def label(self) -> str:
        """The name, or the short ID when there is none."""
        return self.name or self.id[:12]

    def status_text(self) -> str:
        """As ``pidns list`` shows it: ``running``, ``exited (N)``, ``exited (?)``, ..."""
        if self.status == "exited":
            return f"exited ({'?' if self.exit_code is None else self.exit_code})"
        return self.status

    def inspect(self) -> dict[str, Any]:
        """Docker-shaped inspect JSON (``Id``, ``Name``, ``State.Pid``, ``Config.Cmd``...)."""
        c = self.config
        running = self.status == "running"
        state: dict[str, Any] = {
            "Status": self.status, "Running": running,
            "Pid": self.pid or 0 if running else 0,
            "ExitCode": -1 if self.exit_code is None and self.status == "exited"
            else self.exit_code or 0,
            "StartedAt": c.get("started_at") or ZERO_TIME,
            "FinishedAt": self.finished_at or ZERO_TIME,
            "Error": self.error or "",
            "CommandPid": self.command_pid or 0,
            "MonitorPid": c.get("monitor_pid") or 0,
        }
        config = {
            "Cmd": self.cmd, "Env": c.get("env") or [], "Hostname": c.get("hostname") or "",
            "Rootfs": c.get("rootfs") or "", "WorkingDir": c.get("workdir") or "",
            "Init": bool(c.get("init")), "Nest": c.get("nest") or 1,
            "User": bool(c.get("user")), "MountProc": c.get("mount_proc", True),
            "StopSignal": c.get("stop_signal") or DEFAULT_STOP_SIGNAL,
        }
        ns = c.get("namespaces")
        return {
            "Id": self.id, "Name": self.name or "", "Engine": "pidns",
            "Created": c.get("created_at") or ZERO_TIME,
            "Path": self.cmd[0] if self.cmd else "", "Args": self.cmd[1:],
            "State": state, "Config": config,
            "Namespaces": dict(ns) if isinstance(ns, dict) else {},
            "LogPath": c.get("log_path") or "",
        }


def _load(root: str, cid: str, dfd: int) -> Container:
    where = f"{root}/{cid}/config.json"
    try:
        conf = _read_json(dfd, "config.json")
    except FileNotFoundError:
        return Container(cid, None, {}, status="unknown", error=f"{where} is missing")
    except (OSError, ValueError) as exc:
        return Container(cid, None, {}, status="unknown", error=f"{where} is corrupt: {exc}")
    if not isinstance(conf, dict) or conf.get("id") != cid or not isinstance(
            conf.get("cmd"), list):
        return Container(cid, None, {}, status="unknown",
                         error=f"{where} is corrupt: not a pidns container record")
    name = conf.get("name")
    c = Container(cid, name if isinstance(name, str) else None, conf)
    _compute_status(c, dfd)
    return c


def _read_exit(c: Container, dfd: int) -> bool:
    try:
        ex = _read_json(dfd, "exit.json")
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        c.status, c.error = "exited", f"exit.json is corrupt: {exc}"
        return True
    c.status = "exited"
    if isinstance(ex, dict):
        code = ex.get("exit_code")
        c.exit_code = code if isinstance(code, int) else None
        at = ex.get("finished_at")
        c.finished_at = at if isinstance(at, str) else None
    return True


def _compute_status(c: Container, dfd: int) -> None:
    conf = c.config
    if _read_exit(c, dfd):
        return
    pid = conf.get("pid")
    if not isinstance(pid, int):
        # reserved by a `run -d` still starting, or one that died before recording
        creator = conf.get("creator_pid")
        alive = isinstance(creator, int) and starttime(creator) == conf.get("creator_start")
        c.status = "created" if alive else "unknown"
        if not alive:
            c.error = "the container was never started (its `run -d` ended early)"
        return
    fd = open_pidfd(pid, conf.get("pid_start"), conf.get("pid1_ns"))
    if fd is not None:
        try:
            if not _exited(fd):
                c.status = "running"
                return
        finally:
            os.close(fd)
    # PID 1 is gone: the waiter may be writing exit.json right now
    mfd = open_pidfd(conf.get("monitor_pid"), conf.get("monitor_start"), None)
    if mfd is not None:
        try:
            select.select([mfd], [], [], 2.0)
        finally:
            os.close(mfd)
        if _read_exit(c, dfd):
            return
    c.status = "exited"
    c.error = "exit status unknown: the waiter ended before the container"


def open_pidfd(pid: object, start: object, ns_ino: object) -> int | None:
    """A pidfd of ``pid`` if it is still the process recorded (start time, and PID
    namespace inode when given); None when it is gone or the PID was reused.

    The pidfd is opened first and the identity checked after, so a positive answer
    names the process the pidfd refers to (pidfd_open(2)).
    """
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if starttime(pid) != start or (ns_ino is not None and _ns_ino(pid) != ns_ino):
        os.close(fd)
        return None
    return fd


def _exited(pidfd: int) -> bool:
    # A pidfd polls readable once the process has exited (a zombie counts).
    return bool(select.select([pidfd], [], [], 0)[0])


# ---------------------------------------------------------------- resolving

def _open_store_for_read() -> Store | None:
    try:
        return Store.open(create=False)
    except NotFound:
        return None


def find(ref: str, store: Store | None = None) -> Container | None:
    """The container named ``ref``, or whose ID starts with ``ref`` (4+ characters).

    Returns None when nothing matches. Raises NotFound when an ID prefix is ambiguous.
    """
    own = store is None
    st = _open_store_for_read() if store is None else store
    if st is None:
        return None
    try:
        ids = st.ids()
        if ref in ids:
            return st.load(ref)
        cid = st.lookup_name(ref)
        if cid is not None and st.name_of(cid) == ref:
            return st.load(cid)
        for cid in ids:
            if st.name_of(cid) == ref:
                return st.load(cid)
        if len(ref) < MIN_PREFIX or not re.fullmatch(r"[0-9a-f]+", ref):
            return None
        hits = [cid for cid in ids if cid.startswith(ref)]
        if len(hits) > 1:
            raise NotFound(f"resolve {ref!r}",
                           f"the ID prefix matches {len(hits)} containers: "
                           + ", ".join(h[:12] for h in hits[:5]),
                           hint="give more characters of the ID, or the name")
        return st.load(hits[0]) if hits else None
    finally:
        if own:
            st.close()


def get(ref: str, store: Store | None = None) -> Container:
    """As :func:`find`, but NotFound (exit status 1) when nothing matches."""
    c = find(ref, store)
    if c is None:
        raise NotFound(f"find container {ref!r}",
                       f"no pidns container has that name or ID prefix in {default_root()}",
                       hint="list them with `pidns list -a`")
    return c


def _container_nsref(ref: str) -> nsref.NsRef | None:
    c = find(ref)
    if c is None:
        return None
    if c.status != "running" or c.command_pid is None:
        raise NotFound(f"resolve {ref!r}",
                       f"container {c.label} is {c.status_text()}, not running: its PID "
                       "namespace is gone", hint=f"remove it with `pidns rm {c.label}`")
    got = nsref.from_pid(c.command_pid, spec=ref, kind="container", container=c.label,
                         engine="pidns")
    if got.id.ino != c.pidns:
        got.close()
        raise NotFound(f"resolve {ref!r}", f"container {c.label} has just exited",
                       hint=f"remove it with `pidns rm {c.label}`")
    return got


def running_namespaces() -> dict[int, str]:
    """PID-namespace inode -> name (or short ID) of every running pidns container, in
    one pass over the store: the CONTAINER column of ls/ps/tree asks this once, not
    once per namespace. Empty when there is no state directory or it cannot be read."""
    try:
        st = _open_store_for_read()
    except PidnsError:
        return {}
    if st is None:
        return {}
    out: dict[int, str] = {}
    with st:
        for cid in st.ids():
            c = st.load(cid)
            if c.status != "running":
                continue
            for ino in (c.pidns, c.config.get("pid1_ns")):
                if isinstance(ino, int):
                    out[ino] = c.label
    return out


def _labeler(nsid: NsId) -> tuple[str, str] | None:
    name = running_namespaces().get(nsid.ino)
    return None if name is None else ("pidns", name)


nsref.register_container_resolver(_container_nsref)
nsref.register_ns_labeler(_labeler)


# ---------------------------------------------------------------- run -d

_ADJ: Final = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "swift",
               "witty", "bold", "crisp", "gentle", "jolly", "proud", "sharp")
_NOUN: Final = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth",
                "dijkstra", "liskov", "hamilton", "shannon", "backus", "cerf", "kay")


def _auto_name(taken: set[str]) -> str:
    # docker-style adjective_scientist; a numeric suffix when that pair is taken
    while True:
        r = int.from_bytes(os.urandom(4), "little")
        name = f"{_ADJ[r % len(_ADJ)]}_{_NOUN[r // 16 % len(_NOUN)]}"
        if name not in taken:
            return name
        name += f"_{r >> 20 & 1023}"
        if name not in taken:
            return name


def _reserve(store: Store, name: str | None, conf: dict[str, Any]) -> tuple[str, str, int]:
    """Under the lock: check the name, make the entry dir with a config; (id, name, fd)."""
    with store.lock():
        taken = {n for n in map(store.name_of, store.ids()) if n}
        if name is not None and name in taken:
            raise PidnsError(f"create container {name!r}",
                             "the name is already in use by another container",
                             hint=f"pick another name, or remove it with `pidns rm -f {name}`")
        if name is None:
            name = _auto_name(taken)
        cid = os.urandom(32).hex()
        try:
            os.mkdir(cid, 0o700, dir_fd=store.fd)
            dfd = os.open(cid, _O_DIR, dir_fd=store.fd)
            conf.update(id=cid, name=name)
            _write_json(dfd, "config.json", conf)
            store.link_name(name, cid)
        except OSError as exc:
            raise from_oserror(f"write the state of container {name!r} in {store.root}",
                               exc) from exc
    return cid, name, dfd


def _check_monitor() -> None:
    if not os.access(MONITOR_PATH, os.X_OK):
        raise PidnsError("start the container's waiter", f"{MONITOR_PATH} is missing",
                         hint="build the C parts: python3 setup.py build_ext --inplace")


def run_detached(a: RunSpec, env: dict[str, str] | None, nest: int) -> str:
    """Start ``a.cmd`` as a detached container; return its full ID once it runs.

    The container has no terminal (new session, stdin /dev/null); stdout and stderr go
    to ``STATE/ID/log``. Raises UsageError (bad name/signal), PidnsError (name in use,
    state not written, namespace not made), or a PidnsError with status 126/127 when
    the command cannot be executed (nothing is left running or recorded then).
    """
    if a.name is not None:
        validate_name(a.name)
    stop = parse_signal(a.stop_signal, action="use the --stop-signal") \
        if a.stop_signal is not None else signal.SIGTERM
    if nest > 1:
        from pidns.ops.spawn import check_nest  # (subprocess & co: only when needed)

        check_nest(nest)
    status_fd = runopts.status_fd(a.json_status_fd)
    _check_monitor()
    user = a.user or not ksys.has_cap_sys_admin()
    rootfs = None if a.rootfs is None else os.path.abspath(a.rootfs)
    full_env = dict(os.environ) if env is None else env
    now = _now_ns()
    conf: dict[str, Any] = {
        "version": 1, "cmd": list(a.cmd),
        "env": [f"{k}={v}" for k, v in full_env.items()],
        "hostname": a.hostname, "rootfs": rootfs, "workdir": a.workdir, "init": a.init,
        "nest": nest, "user": user, "mount_proc": not a.no_mount_proc,
        "stop_signal": stop.name, "created_ns": now, "created_at": rfc3339(now),
        "creator_pid": os.getpid(), "creator_start": starttime(os.getpid()),
    }
    store = Store.open()
    with store:
        cid, name, dfd = _reserve(store, a.name, conf)
        conf["log_path"] = f"{store.root}/{cid}/log"
        try:
            opts = kspawn.Options(
                list(a.cmd), env=env, user=user, hostname=a.hostname, rootfs=rootfs,
                cwd=a.workdir, mount_proc=not a.no_mount_proc, init=a.init, nest=nest,
                setsid=True, close_fds=True, pdeathsig=0)
            result = _start(store, dfd, conf, opts)
        except BaseException:
            os.close(dfd)
            store.remove(cid)
            raise
        os.close(dfd)
        if "error" in result:
            store.remove(cid)
            raise _start_error(result["error"], list(a.cmd), name)
    if a.pid_file is not None:
        runopts.write_pid_file(a.pid_file, int(result["pid"]))
    if status_fd is not None:
        runopts.status_line(status_fd, child_pid=result["pid"],
                            command_pid=result["command_pid"], pid_namespace=result["pidns"])
    return cid



def _start_error(err: dict[str, Any], argv: list[str], name: str) -> PidnsError:
    from pidns.ops.spawn import raise_spawn_error

    kind = err.get("kind")
    num = int(err.get("errno") or 0)
    if kind in ("child", "clone"):
        exc: OSError = (kspawn.ChildError(int(err.get("stage") or 0), num) if kind == "child"
                        else OSError(num, os.strerror(num)))
        got = raise_spawn_error(exc, argv)
        if isinstance(got, PidnsError):
            return got
        missing = num in (errno.ENOENT, errno.ENOTDIR)
        out = PidnsError(f"run {argv[0]!r} in container {name!r}", os.strerror(num),
                         hint="check the name and PATH inside the namespace" if missing
                         else "check its permissions (chmod +x) and its interpreter line")
        out.status = ExitStatus.NO_COMMAND if missing else ExitStatus.NOT_RUNNABLE
        return out
    if isinstance(err.get("pidns"), dict):
        e = err["pidns"]
        return PidnsError(str(e.get("action")), str(e.get("reason")), hint=e.get("hint"))
    return PidnsError(f"start container {name!r}", str(err.get("message") or "unknown error"))


def _start(store: Store, dfd: int, conf: dict[str, Any], opts: kspawn.Options) -> dict[str, Any]:
    """Double-fork; the grandchild starts PID 1, records it and becomes the waiter.

    Returns the grandchild's report: ``{"pid", "command_pid", "pidns"}`` or ``{"error"}``.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        logfd = os.open("log", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
                        | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise from_oserror(f"create the log file in {store.root}", exc) from exc
    pid = os.fork()
    if pid == 0:  # A: leaves at once, so B is nobody's child but init's (a daemon)
        code = 125
        try:
            os.close(r)
            os.setsid()
            if os.fork() == 0:
                _grandchild(store, dfd, logfd, w, conf, opts)  # never returns
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    os.close(logfd)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    if not data:
        return {"error": {"message": "the starter process died before reporting"}}
    got: dict[str, Any] = json.loads(data)
    return got


def _report(w: int, obj: dict[str, Any]) -> None:
    data = json.dumps(obj).encode()
    while data:
        data = data[os.write(w, data):]


def _grandchild(store: Store, dfd: int, logfd: int, w: int, conf: dict[str, Any],
                opts: kspawn.Options) -> None:
    """B: start PID 1, record it, report to the CLI, exec the waiter. Never returns."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        opts.stdio = (0, logfd, logfd)
        try:
            got = kspawn.spawn(opts)
        except kspawn.ChildError as exc:
            _report(w, {"error": {"kind": "child", "stage": exc.stage, "errno": exc.errno}})
            os._exit(0)
        except OSError as exc:
            _report(w, {"error": {"kind": "clone", "errno": exc.errno}})
            os._exit(0)
        os.close(logfd)
        now = _now_ns()
        nss = {k: _ns_ino(got.command_pid, k) for k in NS_TYPES}
        conf.update(
            pid=got.pid, pid_start=starttime(got.pid), pid1_ns=_ns_ino(got.pid),
            command_pid=got.command_pid, namespaces={k: v for k, v in nss.items() if v},
            monitor_pid=os.getpid(), monitor_start=starttime(os.getpid()),
            started_ns=now, started_at=rfc3339(now))
        conf.pop("creator_pid", None)
        conf.pop("creator_start", None)
        try:
            with store.lock():
                # an `rm` may have removed the reservation meanwhile: then stop
                os.stat("config.json", dir_fd=dfd)
                _write_json(dfd, "config.json", conf)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.kill(got.pid, signal.SIGKILL)
            os.waitpid(got.pid, 0)
            _report(w, {"error": {"pidns": {
                "action": "record the container", "reason": exc.strerror or str(exc),
                "hint": "check the state directory (--state-dir)"}}})
            os._exit(0)
        _report(w, {"pid": got.pid, "command_pid": got.command_pid,
                     "pidns": nss.get("pid")})
        os.close(w)
        store.close()
        os.chdir("/")
        os.set_inheritable(dfd, True)
        os.closerange(3, dfd)
        os.closerange(dfd + 1, 65536)
        try:
            os.execv(MONITOR_PATH, ["pidns-monitor", str(got.pid), str(dfd)])
        except OSError:
            _py_monitor(got.pid, dfd)
    except BaseException as exc:  # noqa: BLE001 - a forked child must never return
        with contextlib.suppress(BaseException):
            _report(w, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
    os._exit(125)


def _py_monitor(pid: int, dfd: int) -> None:
    """The waiter in Python, should pidns-monitor fail to exec (same exit.json)."""
    _, st = os.waitpid(pid, 0)
    sig = os.WTERMSIG(st) if os.WIFSIGNALED(st) else None
    code = 128 + sig if sig is not None else os.WEXITSTATUS(st)
    now = _now_ns()
    with contextlib.suppress(OSError):
        _write_json(dfd, "exit.json", {"exit_code": code, "signal": sig,
                                       "finished_at": rfc3339(now), "finished_ns": now})
    os._exit(0)


# ---------------------------------------------------------------- actions

class StopResult(NamedTuple):
    """What :func:`stop` did: the signal sent first, whether SIGKILL was needed, and
    whether the PID namespace is gone (every process in it ended)."""

    signal: str
    killed: bool
    torn_down: bool
    exit_code: int | None


def _pid1_fd(c: Container) -> int | None:
    return open_pidfd(c.config.get("pid"), c.config.get("pid_start"), c.config.get("pid1_ns"))


def send_signal(c: Container, sig: int) -> None:
    """Send ``sig`` to the container's PID 1 through a pidfd checked against the
    recorded start time and namespace inode (never to a PID that may be reused).

    Raises:
        Refused: the container is not running (exit status 1).
    """
    fd = _pid1_fd(c) if c.status == "running" else None
    if fd is None:
        raise Refused(f"signal container {c.label}", f"it is {c.status_text()}, not running",
                      hint="see `pidns list -a`")
    try:
        signal.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        pass  # it exited just now
    except OSError as exc:
        raise from_oserror(f"signal container {c.label}", exc, pid=c.pid) from exc
    finally:
        os.close(fd)


def _wait_fd(fd: int, timeout: float | None) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _wait_gone(c: Container, timeout: float | None) -> bool:
    """Wait until PID 1 has exited and the waiter (if alive) has recorded it."""
    fd = _pid1_fd(c)
    if fd is not None:
        try:
            if not _wait_fd(fd, timeout):
                return False
        finally:
            os.close(fd)
    mfd = open_pidfd(c.config.get("monitor_pid"), c.config.get("monitor_start"), None)
    if mfd is not None:
        try:
            _wait_fd(mfd, 5.0)
        finally:
            os.close(mfd)
    return True


def _ns_empty(c: Container) -> bool:
    ino = c.config.get("pid1_ns")
    return not any(n.isdigit() and _ns_ino(int(n)) == ino for n in os.listdir("/proc"))


def stop(c: Container, timeout: float = 10.0) -> StopResult:
    """Send the stop signal, then SIGKILL after ``timeout`` seconds; wait for the end.

    Raises:
        Refused: the container is not running.
    """
    sig = parse_signal(str(c.config.get("stop_signal") or DEFAULT_STOP_SIGNAL))
    send_signal(c, sig)
    killed = False
    if not _wait_gone(c, timeout):
        killed = True
        with contextlib.suppress(Refused):
            send_signal(c, signal.SIGKILL)
        _wait_gone(c, None)
    after = reload(c)
    return StopResult(sig.name, killed, _ns_empty(c), after.exit_code)


def kill(c: Container, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to PID 1 (see :func:`send_signal`)."""
    send_signal(c, sig)


def wait(c: Container) -> Container:
    """Block until the container has exited; return it reloaded (``exit_code`` set
    unless its waiter was killed)."""
    if c.status in ("running", "created"):
        while c.status == "created":
            time.sleep(0.05)
            c = reload(c)
        _wait_gone(c, None)
        c = reload(c)
    return c


def reload(c: Container) -> Container:
    """The same container, loaded again."""
    with Store.open(create=False) as st:
        return st.load(c.id)


def remove(c: Container, force: bool = False) -> None:
    """Remove the container's state; with ``force`` kill it first (SIGKILL).

    Raises:
        Refused: it is running (or starting) and ``force`` is not given (exit status 1).
    """
    if c.status in ("running", "created") and not force:
        raise Refused(f"remove container {c.label}", f"it is {c.status}",
                      hint=f"stop it first (`pidns stop {c.label}`), or use `pidns rm -f`")
    if c.status == "running":
        with contextlib.suppress(Refused):
            send_signal(c, signal.SIGKILL)
    _wait_gone(c, None)
    with Store.open(create=False) as st:
        st.remove(c.id)


def log_fd(c: Container) -> int:
    """An fd of the container's log file (O_NOFOLLOW), from the start.

    Raises:
        NotFound: the container has no log (corrupt or removed entry).
    """
    with Store.open(create=False) as st:
        try:
            dfd = st.open_entry(c.id)
        except OSError as exc:
            raise NotFound(f"read the log of {c.label}", exc.strerror or str(exc)) from exc
        try:
            return os.open("log", _O_READ, dir_fd=dfd)
        except OSError as exc:
            raise NotFound(f"read the log of {c.label}", exc.strerror or str(exc),
                           hint="the container was started without a log") from exc
        finally:
            os.close(dfd)


def is_running(c: Container) -> bool:
    """Whether PID 1 is (still) the recorded process and has not exited."""
    fd = _pid1_fd(c)
    if fd is None:
        return False
    try:
        return not _exited(fd)
    finally:
        os.close(fd)


# setns order: the user namespace first (it grants the capabilities for the others),
# the PID namespace last (it only decides where the child goes).
_JOIN_ORDER: Final = (("user", consts.CLONE_NEWUSER), ("mnt", consts.CLONE_NEWNS),
                      ("uts", consts.CLONE_NEWUTS), ("ipc", consts.CLONE_NEWIPC),
                      ("net", consts.CLONE_NEWNET), ("cgroup", consts.CLONE_NEWCGROUP),
                      ("pid", consts.CLONE_NEWPID))


def exec_into(pid: int, argv: list[str], *, env: dict[str, str] | None = None,
              cwd: str | None = None, host_tools: bool = False) -> Process:
    """Start ``argv`` in every namespace of process ``pid`` that differs from ours
    (user, mount, UTS, IPC, network, cgroup, PID: as ``docker exec``); with
    ``host_tools`` keep our mount namespace and mount a /proc of the target's PID
    namespace in a private copy of it. stdio is inherited. Returns our child's handle.

    Raises:
        NotFound: the process is gone or its namespaces cannot be opened.
        FileNotFoundError/PermissionError: CMD cannot be executed (as subprocess).
        PidnsError: a namespace could not be entered.
    """
    from pidns.ops.spawn import Process, raise_spawn_error

    fds: list[tuple[int, int]] = []
    try:
        for kind, flag in _JOIN_ORDER:
            if (kind == "mnt" and host_tools) or (
                    kind != "pid" and _ns_ino(pid, kind) == _ns_ino(os.getpid(), kind)):
                continue
            path = f"/proc/{pid}/ns/{kind}"
            try:
                fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag))
            except OSError as exc:
                raise NotFound(f"enter the namespaces of pid {pid}",
                               f"cannot open {path}: {exc.strerror}", pid=pid,
                               errnum=exc.errno,
                               hint="the process has exited, or run as its owner") from exc
        opts = kspawn.Options(
            argv, env=env, clone_flags=0, join=tuple(fds),
            unshare_flags=consts.CLONE_NEWNS if host_tools else 0, cwd=cwd,
            mount_proc=host_tools, close_fds=False, pdeathsig=0)
        try:
            got = kspawn.spawn(opts)
        except OSError as exc:
            raise raise_spawn_error(exc, argv) from exc
    finally:
        for fd, _ in fds:
            os.close(fd)
    return Process(argv, got.pid)


def needs_user(pid: int) -> bool:
    """Whether process ``pid`` is in another user namespace than ours (exec enters it)."""
    own = _ns_ino(os.getpid(), "user")
    theirs = _ns_ino(pid, "user")
    return theirs is not None and own != theirs

