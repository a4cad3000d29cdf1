#!/usr/bin/env python3
"""Benchmark pidns's detached containers against podman's (same busybox rootfs).

    python3 bench/bench_containers.py [--rounds 5] [--per-round 5] [--idle 10] [--many 100]

1. Latency: ``pidns run -d --rootfs R -- sleep 300`` then ``pidns rm -f``, against
   ``podman run -d --rootfs R sleep 300`` then ``podman rm -f -t 0``, in interleaved
   rounds (each round: ``--per-round`` pidns cycles, then as many podman cycles), wall
   clock of each CLI invocation (start-up included). Ratios are taken per round; the
   median and range are reported.
2. Memory per idle detached container: PSS (/proc/PID/smaps_rollup) of everything kept
   alive for it outside the command itself, with ``--idle`` containers up at once (PSS
   shares pages among copies, as on a host with many containers): pidns = pidns-monitor
   (+ pidns-init with --init); podman --init = conmon + catatonit.
3. ``list`` / ``inspect --format '{{.State.Pid}}'`` with ``--many`` pidns containers up,
   against ``podman ps`` / ``podman inspect`` with as many podman containers.

podman runs as ``podman --runtime runc --cgroup-manager cgroupfs`` (no systemd here).
Everything started is removed; the script checks by PID that nothing is left. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
MAKE_ROOTFS = HERE.parent / "scripts" / "make-rootfs.sh"
PODMAN = ["podman", *shlex.split(os.environ.get(
    "PIDNS_PODMAN_ARGS", "--runtime runc --cgroup-manager cgroupfs"))]
PODMAN_RUN = ["run", "-d", "--network", "none", "--ulimit", "nofile=1024:1024",
              "--ulimit", "nproc=1024:1024"]


def real_python() -> str:
    return os.path.realpath(sys.executable)


class Tools:
    def __init__(self, state: Path, rootfs: Path) -> None:
        self.state = state
        self.rootfs = rootfs
        self.env = {**os.environ, "PYTHONPATH": str(SRC)}

    def pidns(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([real_python(), "-S", "-m", "pidns", "--state-dir",
                               str(self.state), *args], capture_output=True, text=True,
                              env=self.env, check=True, stdin=subprocess.DEVNULL)

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PODMAN, *args], capture_output=True, text=True, check=check,
                              stdin=subprocess.DEVNULL)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def summary(xs: list[float], unit: float = 1000.0) -> str:
    return (f"median {statistics.median(xs) * unit:.1f} "
            f"(min {min(xs) * unit:.1f}, max {max(xs) * unit:.1f})")


def ratio_summary(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f}x (range {min(xs):.3f}-{max(xs):.3f})"


@contextmanager
def tracked(t: Tools) -> Iterator[tuple[list[str], list[str], list[int]]]:
    """Names started by pidns and podman, and PIDs to check at the end."""
    ours: list[str] = []
    theirs: list[str] = []
    pids: list[int] = []
    try:
        yield ours, theirs, pids
    finally:
        for name in ours:
            subprocess.run([real_python(), "-S", "-m", "pidns", "--state-dir", str(t.state),
                            "rm", "-f", name], capture_output=True, env=t.env, check=False)
        for name in theirs:
            t.podman("rm", "-f", "-t", "0", name, check=False)
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in pids if alive(p)]
        if left:
            raise SystemExit(f"processes left behind: {left}")


def bench_latency(t: Tools, rounds: int, per_round: int) -> dict[str, object]:
    ours_run: list[float] = []
    ours_rm: list[float] = []
    pod_run: list[float] = []
    pod_rm: list[float] = []
    ratios_run: list[float] = []
    ratios_rm: list[float] = []
    ratios_cycle: list[float] = []
    with tracked(t) as (ours, theirs, _):
        for r in range(rounds):
            a_run, a_rm, b_run, b_rm = [], [], [], []
            for i in range(per_round):
                name = f"bench-p-{os.getpid()}-{r}-{i}"
                ours.append(name)
                a_run.append(timed(lambda n=name: t.pidns(  # type: ignore[misc]
                    "run", "-d", "--name", n, "--rootfs", str(t.rootfs), "--",
                    "sleep", "300")))
                a_rm.append(timed(lambda n=name: t.pidns("rm", "-f", n)))  # type: ignore[misc]
                ours.remove(name)
            for i in range(per_round):
                name = f"bench-m-{os.getpid()}-{r}-{i}"
                theirs.append(name)
                b_run.append(timed(lambda n=name: t.podman(  # type: ignore[misc]
                    *PODMAN_RUN, "--name", n, "--rootfs", str(t.rootfs), "sleep", "300")))
                b_rm.append(timed(lambda n=name: t.podman(  # type: ignore[misc]
                    "rm", "-f", "-t", "0", n)))
                theirs.remove(name)
            ours_run += a_run
            ours_rm += a_rm
            pod_run += b_run
            pod_rm += b_rm
            ratios_run.append(statistics.median(a_run) / statistics.median(b_run))
            ratios_rm.append(statistics.median(a_rm) / statistics.median(b_rm))
            ratios_cycle.append((statistics.median(a_run) + statistics.median(a_rm))
                                / (statistics.median(b_run) + statistics.median(b_rm)))
            print(f"  round {r + 1}: pidns run -d {statistics.median(a_run) * 1000:.1f} ms, "
                  f"rm -f {statistics.median(a_rm) * 1000:.1f} ms; podman run -d "
                  f"{statistics.median(b_run) * 1000:.1f} ms, rm -f "
                  f"{statistics.median(b_rm) * 1000:.1f} ms", flush=True)
    return {"pidns run -d (ms)": summary(ours_run), "pidns rm -f (ms)": summary(ours_rm),
            "podman run -d (ms)": summary(pod_run), "podman rm -f -t 0 (ms)": summary(pod_rm),
            "ratio run -d": ratio_summary(ratios_run), "ratio rm -f": ratio_summary(ratios_rm),
            "ratio run+rm": ratio_summary(ratios_cycle)}


def bench_memory(t: Tools, idle: int) -> dict[str, object]:
    out: dict[str, object] = {}
    with tracked(t) as (ours, theirs, pids):
        for init in (False, True):
            kept: list[int] = []
            names = [f"bench-mem{int(init)}-{os.getpid()}-{i}" for i in range(idle)]
            for n in names:
                ours.append(n)
                t.pidns("run", "-d", "--name", n, *(["--init"] if init else []),
                        "--rootfs", str(t.rootfs), "--", "sleep", "300")
            time.sleep(0.5)
            for n in names:
                obj = json.loads(t.pidns("inspect", n).stdout)[0]
                monitor, pid1 = obj["State"]["MonitorPid"], obj["State"]["Pid"]
                pids += [monitor, pid1]
                kept.append(pss_kb(monitor) + (pss_kb(pid1) if init else 0))
            label = "pidns --init (pidns-monitor + pidns-init)" if init \
                else "pidns (pidns-monitor)"
            out[f"{label}, KB PSS per container"] = round(statistics.mean(kept))
            for n in names:
                t.pidns("rm", "-f", n)
                ours.remove(n)
        kept = []
        names = [f"bench-mem-pod-{os.getpid()}-{i}" for i in range(idle)]
        for n in names:
            theirs.append(n)
            t.podman(*PODMAN_RUN, "--init", "--name", n, "--rootfs", str(t.rootfs),
                     "sleep", "300")
        time.sleep(0.5)
        for n in names:
            st = json.loads(t.podman("inspect", "--format", "{{json .State}}", n).stdout)
            conmon, pid1 = int(st["ConmonPid"]), int(st["Pid"])
            pids += [conmon, pid1]
            comm = Path(f"/proc/{pid1}/comm").read_text().strip()
            # podman bind-mounts catatonit into the container as /run/podman-init
            if comm not in ("catatonit", "podman-init"):
                raise SystemExit(f"podman --init gave {comm} as PID 1, not catatonit")
            kept.append(pss_kb(conmon) + pss_kb(pid1))
        out["podman --init (conmon + catatonit), KB PSS per container"] = round(
            statistics.mean(kept))
        for n in names:
            t.podman("rm", "-f", "-t", "0", n)
            theirs.remove(n)
    return out


def bench_many(t: Tools, many: int, rounds: int) -> dict[str, object]:
    out: dict[str, object] = {}
    with tracked(t) as (ours, theirs, pids):
        for i in range(many):
            n = f"bench-many-{os.getpid()}-{i}"
            ours.append(n)
            t.pidns("run", "-d", "--name", n, "--rootfs", str(t.rootfs), "--", "sleep", "600")
            m = f"bench-many-pod-{os.getpid()}-{i}"
            theirs.append(m)
            t.podman(*PODMAN_RUN, "--name", m, "--rootfs", str(t.rootfs), "sleep", "600")
        for n in ours:
            pids.append(int(t.pidns("inspect", n, "--format", "{{.State.Pid}}").stdout))
        mid, pmid = ours[many // 2], theirs[many // 2]
        lst, ins, plst, pins = [], [], [], []
        r_list, r_ins = [], []
        for _ in range(rounds):
            a = statistics.median(timed(lambda: t.pidns("list")) for _ in range(3))
            b = statistics.median(timed(lambda: t.podman("ps")) for _ in range(3))
            c = statistics.median(timed(lambda: t.pidns(
                "inspect", mid, "--format", "{{.State.Pid}}")) for _ in range(3))
            d = statistics.median(timed(lambda: t.podman(
                "inspect", "--format", "{{.State.Pid}}", pmid)) for _ in range(3))
            lst.append(a)
            plst.append(b)
            ins.append(c)
            pins.append(d)
            r_list.append(a / b)
            r_ins.append(c / d)
        rows = t.pidns("list", "-n").stdout.splitlines()
        if len([r for r in rows if "bench-many" in r]) != many:
            raise SystemExit(f"pidns list shows {len(rows)} rows, expected {many}")
        out[f"pidns list, {many} containers (ms)"] = summary(lst)
        out[f"podman ps, {many} containers (ms)"] = summary(plst)
        out[f"pidns inspect --format, {many} containers (ms)"] = summary(ins)
        out[f"podman inspect --format, {many} containers (ms)"] = summary(pins)
        out["ratio list / podman ps"] = ratio_summary(r_list)
        out["ratio inspect / podman inspect"] = ratio_summary(r_ins)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--idle", type=int, default=10)
    ap.add_argument("--many", type=int, default=100)
    ap.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (podman --rootfs and pidns as root)")
    for tool in ("podman", "busybox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    # bytecode first: with PYTHONDONTWRITEBYTECODE every run would compile the sources
    subprocess.run([real_python(), "-m", "compileall", "-q", str(SRC)], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-containers-"))
    try:
        rootfs = tmp / "rootfs"
        subprocess.run([str(MAKE_ROOTFS), str(rootfs)], check=True, capture_output=True)
        t = Tools(tmp / "state", rootfs)
        # warm both (page cache, podman's storage set-up)
        with tracked(t) as (ours, theirs, _):
            ours.append("bench-warm")
            t.pidns("run", "-d", "--name", "bench-warm", "--", "true")
            theirs.append("bench-warm")
            t.podman(*PODMAN_RUN, "--name", "bench-warm", "--rootfs", str(rootfs), "true")
        results: dict[str, object] = {}
        print("latency:", flush=True)
        results.update(bench_latency(t, args.rounds, args.per_round))
        print("memory:", flush=True)
        results.update(bench_memory(t, args.idle))
        print(f"list/inspect with {args.many}:", flush=True)
        results.update(bench_many(t, args.many, args.rounds))
        for k, v in results.items():
            print(f"{k}: {v}")
        if args.out is not None:
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        left = [p for p in os.listdir(t.state) if not p.startswith(".")] \
            if t.state.exists() else []
        if left:
            raise SystemExit(f"pidns state left behind: {left}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
