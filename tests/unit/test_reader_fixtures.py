"""ProcFS over a captured fixture tree (scripts/capture_proc.py --scenario)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pidns.errors import NoSuchProcess, ParseError
from pidns.procfs.model import PROC_PID_INIT_INO, NsId
from pidns.procfs.reader import ProcFS

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "proc" / "basic"


@pytest.fixture
def fs() -> ProcFS:
    return ProcFS(str(FIX))


def _by_comm(fs: ProcFS, comm: str) -> list[int]:
    out = []
    for pid in fs.pids():
        try:
            if fs.read_status(pid).name == comm:
                out.append(pid)
        except NoSuchProcess:
            continue
    return out


def test_pids_lists_every_directory(fs: ProcFS) -> None:
    assert fs.pids() == sorted(int(p.name) for p in FIX.iterdir() if p.name.isdigit())


def test_stable_interface(fs: ProcFS) -> None:
    st = fs.read_status(2)
    assert (st.pid, st.ppid, st.name, st.nspid, st.uid) == (2, 0, "kthreadd", (2,), 0)
    assert fs.ns_id(2, "pid") == NsId(0, PROC_PID_INIT_INO)  # dev 0: fixture link text


def test_vanished_process(fs: ProcFS) -> None:
    for read in (fs.read_status, fs.read_stat, fs.read_cmdline, fs.ns_id):
        with pytest.raises(NoSuchProcess) as err:
            read(99902)  # type: ignore[operator]
        assert err.value.pid == 99902


def test_unreadable_ns_link(fs: ProcFS) -> None:
    with pytest.raises(ParseError):
        fs.ns_id(1)


def test_snapshot_counts_instead_of_dropping(fs: ProcFS) -> None:
    snap = fs.snapshot()
    pids = {p.pid for p in snap.processes}
    assert 99902 not in pids
    assert snap.gone == 1
    assert 1 in pids
    assert snap.unseen == 1
    assert snap.by_pid[1].pidns is None
    assert [p.pid for p in snap.problems if p.kind != "gone"] == [1]


def test_kernel_thread_and_zombie(fs: ProcFS) -> None:
    snap = fs.snapshot()
    k = snap.by_pid[2]
    assert k.cmdline == ()
    assert k.command == "[kthreadd]"
    zombies = [p for p in snap.processes if p.state == "Z"]
    assert len(zombies) == 1
    assert zombies[0].cmdline == ()
    assert zombies[0].pidns == NsId(0, PROC_PID_INIT_INO)


def test_odd_comm_survives(fs: ProcFS) -> None:
    (pid,) = _by_comm(fs, "a) (b")
    assert fs.read_stat(pid).comm == "a) (b"


def test_no_nspid_line(fs: ProcFS) -> None:
    st = fs.read_status(99901)
    assert st.nspid == (99901,)
    assert not st.has_nspid


def test_namespaces_from_fixture(fs: ProcFS) -> None:
    snap = fs.snapshot()
    assert len(snap.namespaces) == 2
    host, inner = snap.namespaces
    assert host.id.ino == PROC_PID_INIT_INO
    assert host.level == 0
    assert host.parent is None
    assert inner.level == 1
    # No ioctls on a fixture: the parent comes from the init's launcher.
    assert inner.parent == host.id
    assert inner.init_pid is not None
    assert snap.by_pid[inner.init_pid].nspid[-1] == 1
    launcher = snap.by_pid[snap.by_pid[inner.init_pid].ppid]
    assert launcher.pidns == host.id
    # NPROCS is consistent with the processes' own links.
    for n in snap.namespaces:
        assert set(n.pids) == {p.pid for p in snap.processes if p.pidns == n.id}


def test_light_snapshot_agrees(fs: ProcFS) -> None:
    full = {(n.id, n.level, n.parent, n.init_pid, n.pids) for n in fs.snapshot().namespaces}
    light = {(n.id, n.level, n.parent, n.init_pid, n.pids)
             for n in fs.snapshot(status=False, cmdline=False).namespaces}
    assert full == light


def test_snapshot_infers_namespaces_only_where_sound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot reads ns/pid only where a process's NSpid chain differs in length
    from its parent's (a process is in its parent's namespace or a descendant); what it
    infers must equal each process's own link."""
    import os
    import shutil

    root = tmp_path / "proc"
    shutil.copytree(FIX, root, symlinks=True)
    # a child of 25103 in the same namespace (same NSpid length): inferable
    child = root / "25106"
    shutil.copytree(root / "25103", child, symlinks=True)
    status = (child / "status").read_text()
    status = status.replace("Pid:\t25103", "Pid:\t25106").replace(
        "PPid:\t25060", "PPid:\t25103").replace("NSpid:\t25103", "NSpid:\t25106")
    (child / "status").write_text(status)
    fs = ProcFS(str(root))
    real = os.readlink
    asked: list[str] = []

    def counting(path: str, *a: object, **kw: object) -> str:
        asked.append(path)
        return real(path)

    monkeypatch.setattr(os, "readlink", counting)
    snap = fs.snapshot(mounts=False, relations=False)
    monkeypatch.setattr(os, "readlink", real)
    assert 25106 in snap.by_pid
    for p in snap.processes:
        try:
            own = fs.ns_id(p.pid)
        except ParseError:
            own = None  # PID 1: its link is unreadable (EACCES) in the fixture
        assert p.pidns == own, p.pid
    read = {int(path.split("/")[-3]) for path in asked
            if path.endswith("/ns/pid") and path.split("/")[-3].isdigit()}
    assert 25106 not in read  # inferred from its parent 25103
    assert 25104 in read  # a namespace boundary: NSpid one longer than its parent's
    assert 99901 in read  # no NSpid line (before Linux 4.1): nothing can be inferred
    assert 25105 in read  # a zombie's own link decides, as ps and lsns see it
