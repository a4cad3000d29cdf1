#!/usr/bin/env python3
"""Benchmark ``pidns ls / ps / tree`` against lsns, ps and pstree on nsfarm farms.

    python3 bench/bench_see.py [--rounds 5] [--runs 3] [--farms 50x20,200x50] [--out FILE]

For each farm (K namespaces x M sleeping processes, made by
bench/c/nsfarm.c, compiled into a temporary directory at run time) every command is timed with
``hyperfine -N`` (no shell; CLI start-up included), in interleaved rounds: each round
runs every command once (``--runs`` executions, mean), so machine noise hits all of them
alike. The ratio ``pidns / anchor`` is taken per round; the median and range are
reported. The farm is then ended (nsfarm SIGKILLs each namespace's PID 1) and the
script checks by PID that no farm process is left.

pidns runs as ``python3 -S -m pidns`` with the real interpreter (not a pyenv shim).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import members  # bench/ is on sys.path: scripts run from there

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
NSFARM_C = Path(__file__).resolve().parent / "c" / "nsfarm.c"


def real_python() -> str:
    return os.path.realpath(sys.executable)


def build_nsfarm(tmp: Path) -> Path:
    out = tmp / "nsfarm"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(NSFARM_C)], check=True)
    return out


def start_farm(nsfarm: Path, k: int, m: int) -> tuple[subprocess.Popen[str], list[int]]:
    p = subprocess.Popen([str(nsfarm), str(k), str(m)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().split()
    if not line or line[0] != "READY":
        p.kill()
        p.wait()
        raise SystemExit(f"nsfarm {k} {m} did not come up: {line}")
    return p, [int(x) for x in line[2:]]


def stop_farm(p: subprocess.Popen[str], inits: list[int], inos: set[int]) -> None:
    assert p.stdin is not None
    p.stdin.close()  # EOF: nsfarm SIGKILLs every namespace init and reaps them
    p.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [pid for pid in inits if os.path.exists(f"/proc/{pid}")]
        left += members(inos)
        if not left:
            return
        time.sleep(0.1)
    raise SystemExit(f"farm processes left behind: {left[:20]}")




def hyperfine(cmd: list[str], runs: int, env: dict[str, str], tmp: Path) -> float:
    """Mean seconds of ``runs`` executions of ``cmd`` (hyperfine -N, one warm-up)."""
    js = tmp / "hf.json"
    line = " ".join(_quote(a) for a in cmd)
    subprocess.run(["hyperfine", "-N", "--warmup", "1", "--runs", str(runs), "--style", "none",
                    "--export-json", str(js), line], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return float(json.loads(js.read_text())["results"][0]["mean"])


def _quote(a: str) -> str:
    return a if a and all(c.isalnum() or c in "-_./=,:" for c in a) else repr(a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--farms", default="50x20,200x50")
    ap.add_argument("--out", help="append a markdown section to this file")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (nsfarm makes PID namespaces)")
    for tool in ("hyperfine", "gcc", "lsns", "ps", "pstree"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    py = real_python()
    pidns = [py, "-S", "-m", "pidns"]
    # An installed package has its bytecode compiled; this environment may set
    # PYTHONDONTWRITEBYTECODE, so compile once here or every run would re-compile.
    subprocess.run([py, "-m", "compileall", "-q", str(SRC / "pidns")], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    pairs = [
        ("ls", [*pidns, "ls"], ["lsns", "-t", "pid"]),
        ("ps", [*pidns, "ps"], ["ps", "-e", "-o", "pidns,pid,args"]),
        ("tree", [*pidns, "tree"], ["pstree", "-p", "-S"]),
    ]
    report = [f"Command: `python3 bench/bench_see.py --rounds {a.rounds} --runs {a.runs} "
              f"--farms {a.farms}`  ",
              f"Kernel {os.uname().release}, {os.cpu_count()} CPUs; pidns as "
              f"`{os.path.basename(py)} -S -m pidns` (CLI start-up included, bytecode "
              "compiled first as an install would); "
              f"hyperfine -N, {a.runs} runs per command per round, {a.rounds} interleaved "
              "rounds; ratio = pidns / anchor per round (median [min-max]).", ""]
    with tempfile.TemporaryDirectory(prefix="bench-see-") as t:
        tmp = Path(t)
        nsfarm = build_nsfarm(tmp)
        for spec in a.farms.split(","):
            k, m = (int(x) for x in spec.split("x"))
            farm, inits = start_farm(nsfarm, k, m)
            inos = {os.stat(f"/proc/{pid}/ns/pid").st_ino for pid in inits}
            nproc = sum(1 for n in os.listdir("/proc") if n.isdigit())
            try:
                times: dict[str, list[float]] = {}
                for _ in range(a.rounds):
                    for name, ours, anchor in pairs:
                        times.setdefault(f"pidns {name}", []).append(
                            hyperfine(ours, a.runs, env, tmp))
                        times.setdefault(" ".join(anchor), []).append(
                            hyperfine(anchor, a.runs, env, tmp))
            finally:
                stop_farm(farm, inits, inos)
            report += [f"### {k} namespaces x {m} processes ({k * m} farm processes, "
                       f"{nproc} in /proc)", "",
                       "| pidns | ms (median) | anchor | ms (median) | ratio |",
                       "|---|---:|---|---:|---:|"]
            for name, _, anchor in pairs:
                ours_t = times[f"pidns {name}"]
                theirs_t = times[" ".join(anchor)]
                ratios = [o / x for o, x in zip(ours_t, theirs_t, strict=True)]
                report.append(
                    f"| `pidns {name}` | {statistics.median(ours_t) * 1e3:.1f} | "
                    f"`{' '.join(anchor)}` | {statistics.median(theirs_t) * 1e3:.1f} | "
                    f"**{statistics.median(ratios):.2f}** [{min(ratios):.2f}-"
                    f"{max(ratios):.2f}] |")
            report.append("")
            sys.stdout.write("\n".join(report[-len(pairs) - 5:]) + "\n")
            sys.stdout.flush()
    text = "\n".join(report) + "\n"
    if a.out:
        with open(a.out, "a") as f:
            f.write(text)
    sys.stdout.write("\nfarm processes left: none (checked by PID and namespace)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
