"""Seed scenario 11: ``last-pid`` reads and sets ns_last_pid; the next process created in
the namespace gets the PID after it. The host's own ns_last_pid is only read, never set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pidns
from pidns.errors import NotFound
from pidns.ops.lastpid import last_pid

pytestmark = [pytest.mark.kernel]

if os.geteuid() != 0:
    pytest.skip("building PID namespaces with unshare needs root here", allow_module_level=True)
for tool in ("unshare", "nsenter"):
    if shutil.which(tool) is None:
        pytest.skip(f"util-linux {tool} is not installed", allow_module_level=True)

CLI_ENV = {**os.environ, "PYTHONPATH": str(Path(pidns.__file__).resolve().parent.parent)}
CLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ns_init(reap_ns: Callable[[int], None]) -> Iterator[int]:
    """Host PID of PID 1 of a fresh namespace running `sleep 60`."""
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                          "sleep", "60"], stdin=subprocess.DEVNULL)
    init = 0
    end = time.monotonic() + 10
    while time.monotonic() < end and not init:
        kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
        if kids and Path(f"/proc/{kids[0]}/comm").read_text().strip() == "sleep":
            init = int(kids[0])
        else:
            time.sleep(0.02)
    try:
        assert init, "namespace did not start"
        reap_ns(os.stat(f"/proc/{init}/ns/pid").st_ino)
        yield init
    finally:
        if init:
            os.kill(init, 9)
        p.wait(timeout=10)


def next_pid_inside(init: int) -> int:
    """Create one process in init's namespace and return its PID there."""
    out = subprocess.run(["nsenter", "--target", str(init), "--pid", "--", "sh", "-c",
                          "echo $$"], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_read_then_set_then_next_process(ns_init: int) -> None:
    ref = f"pid:{ns_init}"
    got = last_pid(ref)
    # Only PID 1 existed; the reading helper took the next PID itself, and says so.
    assert got.helper_pid == got.value == 2
    got = last_pid(ref, set_to=500)
    assert (got.value, got.written) == (500, 500)
    assert next_pid_inside(ns_init) == 501
    # And again, lower than before: PIDs are reused from the set point.
    last_pid(ref, set_to=100)
    assert next_pid_inside(ns_init) == 101


def test_read_host_directly() -> None:
    got = last_pid("host")
    assert got.helper_pid is None
    assert 0 < got.value <= int(Path("/proc/sys/kernel/ns_last_pid").read_text())


def test_cli_set_and_json(ns_init: int, pidns_cli: CLI) -> None:
    r = pidns_cli("last-pid", "--ns", f"pid:{ns_init}", "--set", "1000", env=CLI_ENV)
    assert r.returncode == 0, r.stderr
    assert "next process there gets 1001" in r.stdout
    assert "helper" in r.stdout
    assert next_pid_inside(ns_init) == 1001
    r = pidns_cli("last-pid", "--ns", f"pid:{ns_init}", "-J", env=CLI_ENV)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)["last_pid"]
    assert doc["value"] == doc["helper_pid"] == 1002
    assert doc["ns"] == os.stat(f"/proc/{ns_init}/ns/pid").st_ino


def test_bad_values(pidns_cli: CLI) -> None:
    r = pidns_cli("last-pid", "--set", "-5", env=CLI_ENV)
    assert r.returncode == 125
    assert "must be between 0 and" in r.stderr
    with pytest.raises(NotFound):
        last_pid("pid:99999999")


def test_rootless(ns_init: int, rootless: CLI) -> None:
    # Reading its own namespace needs no privilege.
    r = rootless("last-pid")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("host: ns_last_pid ")
    # Setting it does: a one-line PermissionDenied with the fix, exit 125.
    r = rootless("last-pid", "--set", "5")
    assert r.returncode == 125
    assert "CAP_SYS_ADMIN" in r.stderr
    assert r.stderr.count("\n") == 1
    # A root-owned namespace cannot be seen at all: exit 1, saying why.
    r = rootless("last-pid", "--ns", f"pid:{ns_init}")
    assert r.returncode == 1
    assert "not visible" in r.stderr
