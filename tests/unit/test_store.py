"""The container store (pidns.ops.containers): atomic writes, the lock, corrupt entries,
name and ID-prefix resolution. No namespaces are made here; entries are written by hand.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pidns.errors import NotFound, PermissionDenied, PidnsError, UsageError
from pidns.ops import containers
from pidns.ops.containers import Store

ID_A = "a" * 64
ID_B = "abcd" + "0" * 60
ID_C = "abcd" + "1" * 60


def _entry(store: Store, cid: str, **conf: object) -> Path:
    d = Path(store.root) / cid
    d.mkdir(mode=0o700)
    base: dict[str, object] = {"id": cid, "cmd": ["sleep", "1"], "name": None,
                               "created_ns": 1}
    base.update(conf)
    (d / "config.json").write_text(json.dumps(base))
    return d


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(str(tmp_path / "state"))
    yield s
    s.close()


def test_open_creates_0700_and_refuses_missing_without_create(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Store.open(str(tmp_path / "nope"), create=False)
    with Store.open(str(tmp_path / "new")) as s:
        assert os.stat(s.root).st_mode & 0o777 == 0o700


def test_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(PermissionDenied, match="symlink"):
        Store.open(str(tmp_path / "link"))


def test_state_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a directory owned by another user needs root; not root here")
    d = tmp_path / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(PermissionDenied, match="owned by uid 65534") as err:
        Store.open(str(d))
    assert "hint: use your own with --state-dir" in str(err.value)


def test_default_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIDNS_STATE_DIR", "/x/y")
    assert containers.default_root() == "/x/y"
    monkeypatch.delenv("PIDNS_STATE_DIR")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert containers.default_root() == "/run/user/1000/pidns"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert containers.default_root() == "/tmp/pidns-1000"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert containers.default_root() == "/run/pidns"


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(store: Store) -> None:
    d = _entry(store, ID_A)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ino_before = os.stat(d / "config.json").st_ino
        containers._write_json(fd, "config.json", {"id": ID_A, "cmd": ["x"], "n": 2})
        assert json.loads((d / "config.json").read_text())["n"] == 2
        assert os.stat(d / "config.json").st_ino != ino_before  # renamed over, not rewritten
        assert sorted(os.listdir(d)) == ["config.json"]
        assert os.stat(d / "config.json").st_mode & 0o777 == 0o600
    finally:
        os.close(fd)


def test_atomic_write_failure_keeps_old_file(store: Store, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    d = _entry(store, ID_A, name="old")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)

    def boom(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    try:
        with pytest.raises(OSError, match="No space"):
            containers._write_json(fd, "config.json", {"id": ID_A, "name": "new"})
    finally:
        os.close(fd)
    assert json.loads((d / "config.json").read_text())["name"] == "old"
    assert sorted(os.listdir(d)) == ["config.json"]


def test_write_does_not_follow_a_planted_temp_symlink(store: Store, tmp_path: Path) -> None:
    d = _entry(store, ID_A)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (d / f".config.json.{os.getpid()}.tmp").symlink_to(victim)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="Too many levels of symbolic links"):
            containers._write_json(fd, "config.json", {"id": ID_A})
    finally:
        os.close(fd)
    assert victim.read_text() == "keep"


def test_lock_excludes_another_process(store: Store) -> None:
    # a fresh process (not a fork: a forked child would share our lock's open file)
    code = ("import sys, time; from pidns.ops.containers import Store\n"
            "with Store.open(sys.argv[1]).lock(): print(time.monotonic())")
    env = {**os.environ, "PYTHONPATH": str(Path(containers.__file__).parents[2])}
    with store.lock():
        p = subprocess.Popen([sys.executable, "-c", code, store.root],
                             stdout=subprocess.PIPE, text=True, env=env)
        time.sleep(0.5)
        assert p.poll() is None  # still blocked on the lock
        released = time.monotonic()
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    assert float(out) >= released


def test_concurrent_reservations_lose_nothing(store: Store) -> None:
    """20 processes reserve 20 names at once: 20 entries, all readable, none lost."""
    pids = []
    for i in range(20):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with Store.open(store.root) as s:
                    _, _, fd = containers._reserve(s, f"n{i}", {"cmd": ["x"],
                                                                  "created_ns": i})
                    os.close(fd)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
    names = sorted(store.name_of(c) or "" for c in store.ids())
    assert names == sorted(f"n{i}" for i in range(20))


def test_duplicate_name_refused(store: Store) -> None:
    _entry(store, ID_A, name="web")
    with pytest.raises(PidnsError, match="already in use") as err:
        containers._reserve(store, "web", {"cmd": ["x"]})
    assert err.value.status == 125
    assert store.ids() == [ID_A]


def test_corrupt_entry_is_unknown_and_others_still_load(store: Store) -> None:
    _entry(store, ID_A, name="ok", pid=None, creator_pid=None)
    d = _entry(store, ID_B)
    (d / "config.json").write_text('{"id": "abcd0')  # half-written
    _entry(store, ID_C).joinpath("config.json").unlink()
    got = {c.id: c for c in store.all()}
    assert got[ID_B].status == "unknown"
    assert "corrupt" in (got[ID_B].error or "")
    assert got[ID_C].status == "unknown"
    assert "missing" in (got[ID_C].error or "")
    assert got[ID_A].name == "ok"
    assert got[ID_A].error is not None  # never started: says so
    assert containers.get("ok", store).id == ID_A


def test_config_json_symlink_is_not_followed(store: Store, tmp_path: Path) -> None:
    d = Path(store.root) / ID_A
    d.mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"id": ID_A, "cmd": ["x"], "name": "evil"}))
    (d / "config.json").symlink_to(target)
    c = store.load(ID_A)
    assert c.status == "unknown"
    assert c.name is None
    assert store.name_of(ID_A) is None


def test_exit_json_gives_exited_with_code(store: Store) -> None:
    d = _entry(store, ID_A, pid=2**22 + 7, pid_start=1, pid1_ns=1)
    (d / "exit.json").write_text(json.dumps({"exit_code": 3, "signal": None,
                                             "finished_at": "2026-01-01T00:00:00Z"}))
    c = store.load(ID_A)
    assert (c.status, c.exit_code, c.status_text()) == ("exited", 3, "exited (3)")
    obj = c.inspect()
    assert obj["State"]["ExitCode"] == 3
    assert obj["State"]["FinishedAt"] == "2026-01-01T00:00:00Z"
    assert obj["State"]["Pid"] == 0


def test_dead_pid_without_exit_json_is_exited_unknown(store: Store) -> None:
    _entry(store, ID_A, pid=2**22 + 7, pid_start=1, pid1_ns=1, monitor_pid=2**22 + 8)
    c = store.load(ID_A)
    assert c.status_text() == "exited (?)"
    assert c.inspect()["State"]["ExitCode"] == -1


def test_reused_pid_is_not_running(store: Store) -> None:
    # our own PID with a wrong start time stands for a recycled PID
    _entry(store, ID_A, pid=os.getpid(), pid_start=1, pid1_ns=1)
    assert store.load(ID_A).status == "exited"
    assert containers.open_pidfd(os.getpid(), containers.starttime(os.getpid()), None) \
        is not None


def test_find_by_name_full_id_and_prefix(store: Store) -> None:
    _entry(store, ID_A, name="alpha")
    _entry(store, ID_B, name="beta")
    _entry(store, ID_C, name="gamma")
    assert containers.get("alpha", store).id == ID_A
    assert containers.get(ID_B, store).id == ID_B
    assert containers.get("aaaa", store).id == ID_A
    assert containers.get("abcd1", store).id == ID_C
    assert containers.find("abc", store) is None  # under 4 characters: no prefix match
    assert containers.find("delta", store) is None
    with pytest.raises(NotFound, match="matches 2 containers") as err:
        containers.get("abcd", store)
    assert err.value.status == 1
    assert "hint: give more characters" in str(err.value)


def test_remove_is_atomic_and_complete(store: Store) -> None:
    d = _entry(store, ID_A)
    (d / "log").write_text("x")
    store.remove(ID_A)
    assert os.listdir(store.root) == [".lock"]
    store.remove(ID_A)  # already gone: no error


def test_names_and_signals() -> None:
    for good in ("web", "a", "web-1.x_y", "9lives"):
        containers.validate_name(good)
    for bad in ("", "host", "1234", "-x", "a b", "a/b", "ünï"):
        with pytest.raises(UsageError):
            containers.validate_name(bad)
    assert containers.parse_signal("term") == signal.SIGTERM
    assert containers.parse_signal("SIGUSR1") == signal.SIGUSR1
    assert containers.parse_signal("9") == signal.SIGKILL
    for bad in ("NOPE", "0", "999", "-1"):
        with pytest.raises(UsageError):
            containers.parse_signal(bad)


def test_rfc3339() -> None:
    assert containers.rfc3339(1_000_000_000 * 86400 + 5) == "1970-01-02T00:00:00.000000005Z"


def test_name_index_is_used_and_a_stale_one_is_not_trusted(store: Store) -> None:
    cid, name, fd = containers._reserve(store, "web", {"cmd": ["x"], "created_ns": 1})
    os.close(fd)
    assert name == "web"
    assert os.readlink(Path(store.root) / ".names" / "web") == cid
    assert containers.get("web", store).id == cid
    # a link that lies (points at another entry) is checked against config.json
    _entry(store, ID_A, name="other")
    os.unlink(Path(store.root) / ".names" / "web")
    os.symlink(ID_A, Path(store.root) / ".names" / "web")
    assert containers.get("web", store).id == cid
    store.remove(cid)
    assert containers.find("web", store) is None
    assert os.listdir(Path(store.root) / ".names") == ["web"]  # not ours: left alone
