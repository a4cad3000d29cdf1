#!/usr/bin/env python3
"""Capture /proc files of real processes into a fixture tree for ProcFS tests.

    python3 scripts/capture_proc.py DEST PID...      # capture those processes
    python3 scripts/capture_proc.py --scenario DEST  # build the must-have cases, capture,
                                                     # then end them by PID (needs root)

For each PID it writes ``DEST/PID/{stat,status,cmdline}`` byte for byte and
``DEST/PID/ns/pid`` as a symlink whose text is the real link text (``pid:[INODE]``).
An ns link that refuses to be read (EACCES, e.g. a VM agent's PID 1) is recorded as the
text ``EACCES``, which the reader cannot parse and so counts as "not visible".

The scenario holds: a kernel thread (kthreadd, PID 2), PID 1, a process whose comm is
``a) (b``, a zombie, a PID namespace (``unshare --pid --fork``: launcher + its PID 1).
Two cases are derived from captured files and named as such: ``NNN-nonspid`` (the same
status with its ``NSpid`` line removed, as kernels before 4.1 print it) and
``NNN-vanished`` (an empty directory: the process exited between listdir and read).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time


def capture(dest: str, pid: int, name: str | None = None) -> None:
    out = os.path.join(dest, name or str(pid))
    os.makedirs(os.path.join(out, "ns"), exist_ok=True)
    for f in ("stat", "status", "cmdline"):
        try:
            with open(f"/proc/{pid}/{f}", "rb") as src:
                data = src.read()
        except OSError as exc:
            sys.stderr.write(f"skip {pid}/{f}: {exc.strerror}\n")
            continue
        with open(os.path.join(out, f), "wb") as dst:
            dst.write(data)
    try:
        link = os.readlink(f"/proc/{pid}/ns/pid")
    except PermissionError:
        link = "EACCES"  # recorded as unparsable link text: the reader counts it unseen
    except OSError as exc:
        sys.stderr.write(f"skip {pid}/ns/pid: {exc.strerror}\n")
        return
    target = os.path.join(out, "ns", "pid")
    if os.path.lexists(target):
        os.unlink(target)
    os.symlink(link, target)


def _wait_for(pred: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise SystemExit("scenario did not come up")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[-1].split()[0]


def scenario(dest: str) -> None:
    tmp = tempfile.mkdtemp(prefix="capture-")
    started: list[subprocess.Popen[bytes]] = []
    inner: list[int] = []  # not our children: the namespace's PID 1
    try:
        odd = os.path.join(tmp, "a) (b")
        shutil.copy("/bin/sleep", odd)
        started.append(subprocess.Popen([odd, "30"]))
        started.append(subprocess.Popen([sys.executable, "-c",
                                         "import os, time\n"
                                         "if os.fork() == 0: os._exit(0)\n"
                                         "time.sleep(30)\n"]))
        started.append(subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc",
                                         "sleep", "30"]))
        odd_p, zparent, launcher = started
        _wait_for(lambda: _children(zparent.pid) and _children(launcher.pid))
        zombie = _children(zparent.pid)[0]
        _wait_for(lambda: _state(zombie) == "Z")
        ns_init = _children(launcher.pid)[0]
        inner.append(ns_init)
        time.sleep(0.2)  # let exec settle so comm/cmdline are final
        for pid in (1, 2, odd_p.pid, zparent.pid, zombie, launcher.pid, ns_init):
            capture(dest, pid)
        # Derived cases, named as such.
        src = os.path.join(dest, str(ns_init), "status")
        with open(src, "rb") as f:
            text = f.read()
        nonspid = b"".join(line for line in text.splitlines(keepends=True)
                           if not line.startswith(b"NSpid:"))
        name = "99901"
        shutil.rmtree(os.path.join(dest, name), ignore_errors=True)
        shutil.copytree(os.path.join(dest, str(ns_init)), os.path.join(dest, name),
                        symlinks=True)
        with open(os.path.join(dest, name, "status"), "wb") as f:
            f.write(nonspid.replace(f"Pid:\t{ns_init}\n".encode(), b"Pid:\t99901\n"))
        os.makedirs(os.path.join(dest, "99902"), exist_ok=True)
        # git keeps no empty directory: a note that is none of the /proc files
        with open(os.path.join(dest, "99902", "VANISHED"), "w") as f:
            f.write("This directory stands for a process that vanished between readdir "
                    "and open:\nnone of its /proc files exist. (This note keeps the "
                    "directory in git.)\n")
        with open(os.path.join(dest, "README"), "w") as f:
            f.write(f"captured by scripts/capture_proc.py --scenario on {os.uname().release}\n"
                    f"1: PID 1; 2: kthreadd; {odd_p.pid}: comm 'a) (b'; {zparent.pid}: parent "
                    f"of zombie {zombie}; {launcher.pid}: unshare launcher of {ns_init} "
                    f"(PID 1 of a new namespace);\n99901: status of {ns_init} without NSpid "
                    "(pre-4.1 kernels), Pid rewritten; 99902: vanished (empty dir)\n")
    finally:
        for pid in inner:  # killing PID 1 of the namespace ends it
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for p in started:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--scenario"] and len(argv) == 2:
        scenario(argv[1])
        return 0
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    for pid in argv[1:]:
        capture(argv[0], int(pid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
