"""PID translation on the real kernel (seed scenarios 5 and 9).

Namespaces are built with util-linux ``unshare --pid --fork --mount-proc --kill-child``
(``--kill-child``: when an unshare dies its child gets SIGKILL, so killing the outermost
one by PID collapses the whole nest). Both translation paths are checked: the nsfs
ioctls and the /proc NSpid fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pidns
from conftest import NsReaper, children, wait_for
from pidns.errors import NotFound
from pidns.ops import nsref
from pidns.ops import translate as tr

pytestmark = [pytest.mark.kernel]

if os.geteuid() != 0:
    pytest.skip("building PID namespaces with unshare needs root here", allow_module_level=True)
if shutil.which("unshare") is None:
    pytest.skip("util-linux unshare is not installed", allow_module_level=True)

# The pidns_cli fixture runs `python -m pidns`: make sure the child finds this checkout.
CLI_ENV = {**os.environ, "PYTHONPATH": str(Path(pidns.__file__).resolve().parent.parent)}
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]




def nspid(pid: int) -> tuple[int, ...]:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return tuple(int(x) for x in line.split()[1:])
    raise AssertionError("no NSpid line")


def ns_ino(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()




@dataclass
class Nest:
    """One `unshare` nest. ``inits[i]`` is the host PID of PID 1 at level i+1."""

    launcher: subprocess.Popen[bytes]
    inits: list[int]

    @property
    def innermost(self) -> int:
        return self.inits[-1]


@pytest.fixture
def make_nest(reap_ns: Callable[[int], None]) -> Iterator[Callable[..., Nest]]:
    started: list[tuple[subprocess.Popen[bytes], int]] = []

    def make(depth: int, cmd: tuple[str, ...] = ("sleep", "60")) -> Nest:
        argv: list[str] = []
        for _ in range(depth):
            argv += UNSHARE
        p = subprocess.Popen([*argv, *cmd], stdin=subprocess.DEVNULL)
        # Follow the first child at each level down to the command at the bottom.
        inits: list[int] = []

        def walk() -> bool:
            inits.clear()
            cur = p.pid
            for _ in range(depth):
                kids = children(cur)
                if not kids:
                    return False
                cur = kids[0]
                inits.append(cur)
            return comm(cur) == cmd[0]

        try:
            wait_for(walk, f"a {depth}-level nest")
        finally:
            started.append((p, inits[0] if inits else p.pid))
        for pid in inits:
            reap_ns(ns_ino(pid))
        return Nest(p, list(inits))

    yield make
    for p, first in started:
        # SIGKILL the outermost namespace's PID 1 (a process we started, by PID): the
        # kernel kills everything in it and below, and its launcher reaps it and exits.
        try:
            os.kill(first, 9)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture(params=[True, False], ids=["ioctl", "fallback"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_three_level_nest_both_ways(make_nest: Callable[..., Nest], fast: bool) -> None:
    nest = make_nest(3)
    # Sanity: the kernel's own view (seed 5: the NSpid chain).
    assert nspid(nest.innermost)[1:] == (3, 2, 1)
    levels = [nsref.resolve(f"pid:{p}") for p in nest.inits]
    for init, ref in zip(nest.inits, levels, strict=True):
        assert tr.translate(1, ref, "host", fast=fast) == init
        assert tr.translate(init, "host", ref, fast=fast) == 1
    # Innermost process as each level sees it: 3 at level 1, 2 at level 2, 1 at level 3.
    for want, ref in zip((3, 2, 1), levels, strict=True):
        assert tr.translate(nest.innermost, "host", ref, fast=fast) == want
    # Between two non-host namespaces: level 1's PID 3 is level 3's PID 1, and back.
    assert tr.translate(3, levels[0], levels[2], fast=fast) == 1
    assert tr.translate(1, levels[2], levels[0], fast=fast) == 3
    assert tr.translate(2, levels[1], levels[0], fast=fast) == 3


def test_ancestor_is_invisible_from_inside(make_nest: Callable[..., Nest], fast: bool) -> None:
    nest = make_nest(3)
    inner = nsref.resolve(f"pid:{nest.innermost}")
    # Seed 9: level 1's init lives in an ancestor of the innermost namespace.
    with pytest.raises(NotFound, match=r"lives in an ancestor of pid:\[\d+\]: invisible"):
        tr.translate(nest.inits[0], "host", inner, fast=fast)
    with pytest.raises(NotFound, match="lives in an ancestor"):
        tr.translate(os.getpid(), "host", inner, fast=fast)
    with pytest.raises(NotFound, match="no process 4242"):
        tr.translate(4242, inner, "host", fast=fast)


def test_siblings(make_nest: Callable[..., Nest], fast: bool) -> None:
    a = make_nest(1)
    b = make_nest(1)
    ra, rb = nsref.resolve(f"pid:{a.innermost}"), nsref.resolve(f"pid:{b.innermost}")
    assert ra.id != rb.id
    # Seed 4: two PID 1s at once, with different host PIDs.
    assert tr.translate(1, ra, fast=fast) == a.innermost
    assert tr.translate(1, rb, fast=fast) == b.innermost
    with pytest.raises(NotFound, match="sibling branch"):
        tr.translate(1, ra, rb, fast=fast)


def test_siblings_under_a_common_parent(make_nest: Callable[..., Nest], fast: bool) -> None:
    # One namespace P holding two child namespaces A and B.
    script = (" ".join(UNSHARE) + " sleep 61 & " + " ".join(UNSHARE) + " sleep 62 & wait")
    nest = make_nest(1, ("sh", "-c", script))
    p_init = nest.innermost

    def leaves() -> list[int]:
        return [k for u in children(p_init) for k in children(u) if comm(k) == "sleep"]

    wait_for(lambda: len(leaves()) == 2, "two sibling namespaces")
    la, lb = sorted(leaves())
    for pid in (la, lb):
        nsref_ino = ns_ino(pid)
        assert nsref_ino != ns_ino(p_init)
    rp = nsref.resolve(f"pid:{p_init}")
    ra, rb = nsref.resolve(f"pid:{la}"), nsref.resolve(f"pid:{lb}")
    in_p = nspid(la)[1]  # A's PID 1 as P sees it
    assert tr.translate(1, ra, rp, fast=fast) == in_p
    assert tr.translate(in_p, rp, ra, fast=fast) == 1
    with pytest.raises(NotFound, match=rf"sibling branch.*common ancestor pid:\[{rp.ino}\]"):
        tr.translate(1, ra, rb, fast=fast)


def test_fast_and_fallback_agree_on_every_live_process(
        make_nest: Callable[..., Nest]) -> None:
    nest = make_nest(3)
    side = make_nest(1)
    refs = [nsref.resolve("host")] + [nsref.resolve(f"pid:{p}")
                                       for p in [*nest.inits, side.innermost]]
    checked = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        for dst in refs:
            results: list[int | None] = []
            for fast in (True, False):
                try:
                    results.append(tr.translate(pid, "host", dst, fast=fast))
                except NotFound:
                    results.append(None)
            if not os.path.exists(f"/proc/{pid}"):
                break  # exited while we looked; no verdict
            assert results[0] == results[1], (pid, dst, results)
            if results[0] is not None:
                # ... and back again, both paths.
                for fast in (True, False):
                    assert tr.translate(results[0], dst, "host", fast=fast) == pid
            checked += 1
    assert checked > 100


def test_chain_all_levels(make_nest: Callable[..., Nest]) -> None:
    nest = make_nest(3)
    levels = tr.chain(1, f"pid:{nest.innermost}")
    assert [lv.pid for lv in levels] == [nest.innermost, 3, 2, 1]
    assert [lv.level for lv in levels] == [0, 1, 2, 3]
    assert [lv.ns.ino if lv.ns else None for lv in levels] == \
        [ns_ino(os.getpid())] + [ns_ino(p) for p in nest.inits]


def test_cli(make_nest: Callable[..., Nest],
             pidns_cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return pidns_cli(*args, env=CLI_ENV)

    nest = make_nest(2)
    ref = f"pid:{nest.innermost}"
    r = cli("translate", "1", "--from", ref)
    assert (r.returncode, r.stdout.strip()) == (0, str(nest.innermost)), r.stderr
    r = cli("translate", str(nest.innermost), "--to", ref)
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr
    r = cli("translate", str(nest.inits[0]), "--to", ref)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1
    assert "lives in an ancestor of" in r.stderr
    assert "invisible from inside" in r.stderr
    r = cli("translate", "1", "--from", ref, "-a", "-J")
    assert r.returncode == 0, r.stderr
    pids = json.loads(r.stdout)["pids"]
    assert [p["pid"] for p in pids] == [nest.innermost, 2, 1]
    r = cli("translate", "1", "--from", ref, "-a", "--to", ref)
    assert r.returncode == 125
    assert "--to does not apply" in r.stderr
    r = cli("translate", "77777", "--from", ref)
    assert r.returncode == 1
    assert "no process 77777" in r.stderr


def test_rootless_says_what_it_cannot_see(
        make_nest: Callable[..., Nest],
        rootless: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    nest = make_nest(1)
    r = rootless("translate", "1", "--from", f"pid:{nest.innermost}")
    # A root-owned namespace: uid 65534 may not open /proc/N/ns/pid (ptrace check).
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "not visible" in r.stderr
    assert "Permission denied" in r.stderr
    # Its own namespace it can use: PID 1 of the host is PID 1 of the host.
    r = rootless("translate", "1")
    assert (r.returncode, r.stdout.strip()) == (0, "1"), r.stderr


def test_namespace_kept_alive_by_a_bind_mount(make_nest: Callable[..., Nest],
                                               tmp_path: Path, reap_ns: NsReaper) -> None:
    """ns:INODE / a bare inode / the mount path resolve through /proc/self/mountinfo
    once no process is left in the namespace; translating into it finds no process."""
    nest = make_nest(1)
    ino = ns_ino(nest.innermost)
    reap_ns.release(ino)  # the fixture's pin would keep the namespace alive by an fd
    target = tmp_path / "pidns"
    target.touch()
    subprocess.run(["mount", "--bind", f"/proc/{nest.innermost}/ns/pid", str(target)],
                   check=True)
    try:
        os.kill(nest.innermost, 9)
        nest.launcher.wait(timeout=10)
        wait_for(lambda: not os.path.exists(f"/proc/{nest.innermost}"), "the init to go")
        for spec in (f"ns:{ino}", str(ino), str(target)):
            with nsref.resolve(spec) as ref:
                assert ref.id.ino == ino
                assert ref.pid is None  # no process: found through the bind mount
                assert ref.path == str(target)
                with pytest.raises(NotFound, match=f"no process 1 in pid:\\[{ino}\\]"):
                    tr.translate(1, ref, "host")
    finally:
        subprocess.run(["umount", str(target)], check=True)
    # the kernel frees the namespace after the last reference goes, not always by the
    # time umount returns: poll (bounded) until nothing holds it any more
    def gone() -> bool:
        try:
            nsref.resolve(f"ns:{ino}").close()
        except NotFound:
            return True
        return False

    wait_for(gone, "the namespace to be released")
    with pytest.raises(NotFound, match="no process, nsfs bind mount or open fd"):
        nsref.resolve(f"ns:{ino}")
