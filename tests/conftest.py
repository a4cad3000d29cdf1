"""Shared fixtures: run the CLI for real, run it as an unprivileged user, clean up.

Conventions for every test module:
- ``pidns_cli(*args)`` runs ``python -m pidns ARGS`` as a real process (stdin closed).
- ``rootless(*argv)`` runs ``python -m pidns ...`` (or any argv with ``PIDNS_PY``) as
  uid/gid 65534 via setpriv, from a copy of the package that user can read.
- Tests end only processes they started, by PID; ``reap_ns(ino)`` checks that no
  process is left in a PID namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pidns

PKG_DIR = Path(pidns.__file__).resolve().parent
MAKE_ROOTFS = Path(__file__).resolve().parent.parent / "scripts" / "make-rootfs.sh"
NOBODY = 65534


def is_root() -> bool:
    return os.geteuid() == 0


def userns_allowed() -> bool:
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except OSError:
        return False


CLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def pidns_cli() -> CLI:
    def run(*args: str, timeout: float = 60, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full = dict(os.environ if env is None else env)
        full["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PKG_DIR.parent), full.get("PYTHONPATH")) if p)
        return subprocess.run(
            [sys.executable, "-m", "pidns", *args], capture_output=True, text=True,
            timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL,
            env=full,
        )

    return run


@pytest.fixture(scope="session")
def nobody_pkg() -> Iterator[Path]:
    """A copy of the package in a directory uid 65534 can read (pytest's own temp root
    is 0700, and the checkout may be too)."""
    if not is_root():
        pytest.skip("rootless tests drop from root to uid 65534 with setpriv; not root here")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pidns-nobody-"))
    os.chmod(base, 0o755)
    shutil.copytree(PKG_DIR, base / "pidns", ignore=shutil.ignore_patterns("__pycache__"))
    for p in [base, *base.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() or os.access(p, os.X_OK) else 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _system_python() -> str:
    # The pyenv interpreter lives under /root (mode 0700): uid 65534 cannot run it.
    for cand in ("/usr/bin/python3", sys.executable):
        if os.access(cand, os.X_OK):
            return cand
    return sys.executable


@pytest.fixture
def rootless(nobody_pkg: Path) -> CLI:
    """Run ``python -m pidns ARGS`` as uid/gid 65534 (no capabilities)."""

    def run(*args: str, timeout: float = 60, module: str = "pidns",
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(nobody_pkg),
               "HOME": "/tmp", "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": "/tmp"}
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", _system_python(), "-S", "-m", module, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              cwd="/")

    return run


def children(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), from /proc/PID/task/*/children."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            continue
    return out


def wait_for(pred: Callable[[], object], what: str, timeout: float = 10) -> None:
    """Poll ``pred`` every 20 ms until it is true; fail naming ``what`` after ``timeout``
    (a hang guard, not a timing assertion)."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox root file system (scripts/make-rootfs.sh), made once per session.
    Skips, saying why, without busybox; on CI (which installs it) that is a failure."""
    if shutil.which("busybox") is None and not Path("/bin/busybox").exists():
        if os.environ.get("CI"):
            pytest.fail("busybox is not installed on CI (apt-get install busybox-static)")
        pytest.skip("busybox is not installed (apt-get install busybox-static)")
    d = tmp_path_factory.mktemp("rootfs") / "root"
    subprocess.run([str(MAKE_ROOTFS), str(d)], check=True, capture_output=True)
    return d


def procs_in_ns(ino: int) -> list[int]:
    """Host PIDs whose PID namespace has inode ``ino`` (EACCES/ENOENT skipped)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}/ns/pid").st_ino == ino:
                out.append(int(name))
        except OSError:
            continue
    return out


def pin_ns(ino: int) -> int | None:
    """An open fd on the PID namespace with inode ``ino`` (found through a live member),
    or None if it has none. While the fd is open the namespace object lives on, so its
    inode number cannot be handed to a new namespace: a later check by inode is sound."""
    for pid in procs_in_ns(ino):
        try:
            fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        if os.fstat(fd).st_ino == ino:
            return fd
        os.close(fd)
    return None


class NsReaper:
    """``reap_ns(ino)`` registers a namespace; at teardown any survivor fails the test
    (after being SIGKILLed by PID, so nothing leaks into later tests). The namespace is
    pinned by an fd, so the inode still names *that* namespace at teardown;
    ``reap_ns.release(ino)`` drops the pin (for a test that needs it to go away)."""

    def __init__(self) -> None:
        self.pinned: dict[int, int] = {}

    def __call__(self, ino: int) -> None:
        if ino not in self.pinned:
            fd = pin_ns(ino)
            if fd is not None:
                self.pinned[ino] = fd

    def release(self, ino: int) -> None:
        fd = self.pinned.pop(ino, None)
        if fd is not None:
            os.close(fd)

    def finish(self) -> None:
        leaked = {ino: procs_in_ns(ino) for ino in self.pinned}
        for pids in leaked.values():
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        for fd in self.pinned.values():
            os.close(fd)
        self.pinned.clear()
        bad = {k: v for k, v in leaked.items() if v}
        assert not bad, f"processes left in namespaces: {bad}"


@pytest.fixture
def reap_ns() -> Iterator[NsReaper]:
    """See :class:`NsReaper`."""
    reaper = NsReaper()
    yield reaper
    reaper.finish()
