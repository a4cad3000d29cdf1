"""Seed scenario 12: a PID sent over a unix socket arrives translated into the
receiver's namespace; ``peer_pid`` gives the peer's PID in ours (0/NotFound when the
peer is invisible). The inside half runs under ``unshare --pid --fork --mount-proc``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pidns
from pidns._kernel import sys as ksys
from pidns.errors import NotFound
from pidns.ops import peer
from pidns.ops import translate as tr

pytestmark = [pytest.mark.kernel]

if os.geteuid() != 0:
    pytest.skip("building PID namespaces with unshare needs root here", allow_module_level=True)
if shutil.which("unshare") is None:
    pytest.skip("util-linux unshare is not installed", allow_module_level=True)

SRC = str(Path(pidns.__file__).resolve().parent.parent)

INNER = r"""
import json, os, socket, sys
from pidns.errors import NotFound
from pidns.ops import peer

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
peer.send_pid(s)                                   # outside gets our host PID
seen = peer.peer_pid(s, strict=False)              # the listener lives outside: 0
try:
    peer.peer_pid(s)
    strict = "no error"
except NotFound as e:
    strict = str(e)
got = peer.recv_pid(s, strict=False)               # outside's PID, seen from inside: 0

# A second process in this namespace sends its PID to us: its inside PID arrives.
a, b = socket.socketpair()
peer.enable_passcred(a)
child = os.fork()
if child == 0:
    peer.send_pid(b)
    os._exit(0)
sibling = peer.recv_pid(a)
os.waitpid(child, 0)
print(json.dumps({"self": os.getpid(), "peer": seen, "strict": strict, "recv": got,
                  "child": child, "sibling_recv": sibling}))
"""


@pytest.fixture(params=["pidfd", "peercred"])
def pidfd_mode(request: pytest.FixtureRequest,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with SO_PEERPIDFD available, and again as on a kernel before 6.5."""
    if request.param == "peercred":
        def no_pidfd(sock: socket.socket) -> int:
            raise OSError(errno.ENOPROTOOPT, os.strerror(errno.ENOPROTOOPT))
        monkeypatch.setattr(ksys, "peer_pidfd", no_pidfd)
    return str(request.param)


def test_same_namespace(pidfd_mode: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        assert peer.peer_pid(a) == os.getpid()
        peer.enable_passcred(b)
        peer.send_pid(a)
        assert peer.recv_pid(b) == os.getpid()


def test_seed12_across_a_pid_namespace(
        tmp_path: Path, reap_ns: Callable[[int], None], pidfd_mode: str) -> None:
    path = str(tmp_path / "sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    peer.enable_passcred(listener)  # inherited by accept()ed sockets: no race
    listener.listen(1)
    listener.settimeout(30)
    launcher = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
         sys.executable, "-c", INNER, path],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, text=True)
    try:
        conn, _ = listener.accept()
        with conn:
            host_pid = peer.peer_pid(conn)
            ns = os.stat(f"/proc/{host_pid}/ns/pid").st_ino
            reap_ns(ns)
            assert ns != os.stat("/proc/self/ns/pid").st_ino
            # The connecting process is the namespace's PID 1, seen from here.
            assert host_pid in [int(x) for x in
                                Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
                                .read_text().split()]
            assert tr.translate(1, f"pid:{host_pid}") == host_pid
            assert peer.recv_pid(conn) == host_pid
            peer.send_pid(conn)
            out, _ = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(timeout=10)
        listener.close()
    assert launcher.returncode == 0
    inside = json.loads(out)
    assert inside["self"] == 1
    assert inside["peer"] == 0            # the outside listener is invisible inside
    assert "not visible from this PID namespace" in inside["strict"]
    assert inside["recv"] == 0            # our PID, sent in, arrives as 0
    assert inside["sibling_recv"] == inside["child"] == 2


def test_not_a_unix_socket() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
            pytest.raises(pidns.PidnsError, match="peer"):
        peer.peer_pid(s)


def test_peer_closed_without_sending() -> None:
    a, b = socket.socketpair()
    a.close()
    with b, pytest.raises(NotFound, match="closed"):
        peer.recv_pid(b)
