"""Benchmark: ``pidns.translate`` per call (nsfs ioctl path, /proc fallback path) against
a full /proc scan, with many sleeping processes spread over many PID namespaces.

    sudo python3 bench/bench_translate.py            # 1,000/50 and 10,000/200
    sudo python3 bench/bench_translate.py --farms 50x20 --rounds 3

Each farm is made by bench/c/nsfarm.c (compiled into a temporary
directory, never copied into the repository): K namespaces of M processes each. The
measured calls, per round, interleaved (every method once per round, then again):

- ``ioctl``: translate(1, ns_k, host) and translate(host_pid, host, ns_k), ns_k taken
  round-robin from pre-resolved NsRefs (their nsfs fds are cached);
- ``ioctl+resolve``: the same with ``pid:N`` strings resolved on every call;
- ``fallback``: translate(1, ns_k, host, fast=False): NSpid chains from /proc;
- ``scan``: one full /proc scan (read every /proc/PID/status, stat every ns/pid) — what
  answering one translation costs without the kernel's help.

Figures are medians over rounds. The farm is torn down by closing nsfarm's stdin; the
script then checks by PID that every namespace init and every member is gone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import members  # bench/ is on sys.path: scripts run from there

from pidns.ops import nsref
from pidns.ops import translate as tr

NSFARM_C = Path(__file__).resolve().parent / "c" / "nsfarm.c"


def build_nsfarm(tmp: Path) -> Path:
    exe = tmp / "nsfarm"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(NSFARM_C)], check=True)
    return exe


def full_scan() -> int:
    """Read every /proc/PID/status and stat its ns/pid; return the process count."""
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                f.read()
            os.stat(f"/proc/{name}/ns/pid")
        except OSError:
            continue
        n += 1
    return n


def per_call(fn: Callable[[int], object], calls: int) -> float:
    """Microseconds per call of fn(i) over ``calls`` calls."""
    t0 = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - t0) / calls * 1e6




def run_farm(exe: Path, k: int, m: int, rounds: int) -> dict[str, list[float]]:
    farm = subprocess.Popen([str(exe), str(k), str(m)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert farm.stdout is not None
    assert farm.stdin is not None
    line = farm.stdout.readline().split()
    if not line or line[0] != "READY":
        farm.kill()
        farm.wait()
        raise SystemExit(f"nsfarm {k} {m} did not come up: {line}")
    inits = [int(x) for x in line[2:]]
    inos = {os.stat(f"/proc/{p}/ns/pid").st_ino for p in inits}
    results: dict[str, list[float]] = {"ioctl": [], "ioctl+resolve": [], "fallback": [],
                                       "scan": [], "visible": []}
    try:
        refs = [nsref.resolve(f"pid:{p}") for p in inits]
        specs = [f"pid:{p}" for p in inits]
        # Correctness first: both paths give each namespace's init.
        for ref, init in zip(refs, inits, strict=True):
            assert tr.translate(1, ref, fast=True) == init
            assert tr.translate(init, "host", ref, fast=True) == 1
        for ref, init in list(zip(refs, inits, strict=True))[:3]:
            assert tr.translate(1, ref, fast=False) == init
        host = nsref.resolve("host")
        nprocs = full_scan()

        def ioctl(i: int) -> None:
            ref = refs[i % k]
            tr.translate(1, ref, host, fast=True)

        def ioctl_back(i: int) -> None:
            tr.translate(inits[i % k], host, refs[i % k], fast=True)

        def ioctl_resolve(i: int) -> None:
            tr.translate(1, specs[i % k], "host", fast=True)

        def fallback(i: int) -> None:
            tr.translate(1, refs[i % k], host, fast=False)

        def scan(i: int) -> None:
            full_scan()

        for _ in range(rounds):
            a = per_call(ioctl, 20000)
            b = per_call(ioctl_back, 20000)
            results["ioctl"].append((a + b) / 2)
            results["ioctl+resolve"].append(per_call(ioctl_resolve, 2000))
            results["fallback"].append(per_call(fallback, 3))
            results["scan"].append(per_call(scan, 3))
            results["visible"].append(float(full_scan()))
        print(f"  farm {k} ns x {m} procs: {nprocs} processes visible in /proc",
              file=sys.stderr)
    finally:
        farm.stdin.close()
        farm.wait(timeout=120)
        # Verify cleanup by PID: every init and every member of the farm's namespaces.
        deadline = time.monotonic() + 30
        left = members(inos)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = members(inos)
        alive_inits = [p for p in inits if Path(f"/proc/{p}").exists()
                       and os.stat(f"/proc/{p}/ns/pid").st_ino in inos]
        if left or alive_inits:
            raise SystemExit(f"cleanup failed: {len(left)} processes left in the farm's "
                             f"namespaces, inits alive: {alive_inits[:10]}")
        print(f"  cleanup verified: 0 of {k * m} farm processes left", file=sys.stderr)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--farms", nargs="+", default=["50x20", "200x50"],
                    help="KxM: K namespaces of M processes (default: 50x20 200x50)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: nsfarm creates PID namespaces")
    with tempfile.TemporaryDirectory(prefix="pidns-bench-") as tmp:
        exe = build_nsfarm(Path(tmp))
        rows = []
        for spec in args.farms:
            k, m = (int(x) for x in spec.split("x"))
            res = run_farm(exe, k, m, args.rounds)
            med = {name: statistics.median(v) for name, v in res.items()}
            rows.append((k, m, med, res))
    print("| farm processes | namespaces | processes in /proc | ioctl µs/call "
          "| ioctl+resolve µs/call | fallback µs/call | full /proc scan µs "
          "| scan / ioctl | fallback / ioctl |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, m, med, _ in rows:
        print(f"| {k * m:,} | {k} | {med['visible']:,.0f} | {med['ioctl']:.2f} "
              f"| {med['ioctl+resolve']:.1f} "
              f"| {med['fallback']:,.0f} | {med['scan']:,.0f} "
              f"| {med['scan'] / med['ioctl']:,.0f}x | {med['fallback'] / med['ioctl']:,.0f}x |")
    print()
    for k, m, _, res in rows:
        print(f"rounds, {k * m} processes: " + "; ".join(
            f"{name} " + ", ".join(f"{x:.2f}" if x < 100 else f"{x:,.0f}" for x in v)
            for name, v in res.items() if name != "visible"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
