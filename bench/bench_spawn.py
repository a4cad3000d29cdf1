#!/usr/bin/env python3
"""Benchmark ``pidns run`` / ``pidns.run``: CLI start-up, in-process spawn, and the init.

    python3 bench/bench_spawn.py [--rounds 5] [--runs 20] [--iters 150] [--c-iters 400]
                                 [--orphans 2000] [--init-rounds 3] [--parts 1,2,3]
                                 [--script auto|none|PATH]

1. CLI end to end: ``hyperfine -N`` (no shell) of the C floor one-shot
   (``bench/c/floor.c``: clone(CLONE_NEWPID)+execv(/bin/true)+waitpid), unshare, bwrap,
   ``python3 -S -c pass``, ``python3 [-S] -m pidns run -- true`` (real interpreter,
   PYTHONPATH=src, bytecode compiled first) and the ``pidns`` console script (built into a
   throwaway venv under the temp dir unless ``--script`` says otherwise). Target: pidns
   CLI <= 1.3x ``python3 -S -c pass``.
2. In-process spawn, µs per call (median of each round): the C floor loop (fork-like clone,
   +NEWNS+mount proc, and vfork-like clone), ``pidns.run(["/bin/true"])``, the lower layer
   ``_kernel.spawn.spawn(Options(...))`` + waitpid, ``subprocess.run(["unshare", ...])``
   and Python os.fork + unshare + os.fork + execv. Target: pidns.run <= 1.5x the C floor.
3. Init: PSS/RSS (``/proc/PID/smaps_rollup``) of an idle namespace PID 1 (``pidns run
   --init -- sleep 60`` vs tini, dumb-init, catatonit under ``unshare --pid --fork
   --mount-proc``), and 2000 double-forked orphans made inside each (wall time; the
   workload counts zombies in the namespace's own /proc until none are left, so
   ``zombies`` must be 0). ``pidns run`` without ``--init`` is the no-init control.

Every row is measured once per round, rounds interleaved (the order rotates), so machine
noise hits all rows alike; ratios are taken per round against a reference row of the
same round and shown as median [min-max]. Every process started here is ended by PID;
at the end the script checks that none of its descendants and no process in any
namespace it saw remains. JSON results go to a temp dir (printed at the end).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
FLOOR_C = HERE / "c" / "floor.c"
PY = os.path.realpath(sys.executable)

sys.path.insert(0, str(SRC))

# pid-namespace inode -> clock tick (since boot) at which we last ended a namespace with
# that inode; checked empty at the end. nsfs inodes are reused once a namespace is freed,
# and other users of the machine make namespaces too, so a process found there later
# counts as ours only if it started before we ended the namespace.
SEEN_NS: dict[int, float] = {}


# ---------------------------------------------------------------- helpers


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def build_floor(tmp: Path) -> Path:
    out = tmp / "floor"
    sh(["gcc", "-O2", "-Wall", "-o", str(out), str(FLOOR_C)])
    return out


def build_script(tmp: Path) -> tuple[str | None, str]:
    """A ``pidns`` console script in a throwaway venv; (path or None, how it went)."""
    pkg = tmp / "pkg"  # a copy, so the build writes nothing into the repository
    pkg.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, pkg / name)
    shutil.copytree(SRC, pkg / "src", ignore=shutil.ignore_patterns(
        "__pycache__", "*.so", "pidns-init", "pidns-monitor", "*.egg-info"))
    shutil.copytree(ROOT / "bin", pkg / "bin")  # the launcher pyproject installs
    venv = tmp / "venv"
    t0 = time.monotonic()
    try:
        sh([PY, "-m", "venv", str(venv)])
        sh([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
            str(pkg)], timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", "") or "").strip().splitlines()[-3:]
        return None, f"pip install failed: {' | '.join(tail)}"
    script = venv / "bin" / "pidns"
    if not script.exists():
        return None, "pip install succeeded but made no bin/pidns"
    sh([str(venv / "bin" / "python"), "-m", "compileall", "-q",
        str(next(venv.glob("lib/python*/site-packages/pidns")))])
    return str(script), f"built by pip into {venv} in {time.monotonic() - t0:.1f} s"


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def ns_ino(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def ticks_now() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * os.sysconf("SC_CLK_TCK")


def start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def leftovers() -> tuple[list[int], list[int]]:
    """(ours, not ours): processes in the namespaces we saw, split by start time."""
    ours, reused = [], []
    for pid in in_namespaces(set(SEEN_NS)):
        st, ino = start_ticks(pid), ns_ino(pid)
        if st is None or ino is None:
            continue
        (ours if st <= SEEN_NS[ino] else reused).append(pid)
    return ours, reused


def in_namespaces(inos: set[int]) -> list[int]:
    """Host PIDs of processes whose PID namespace is one of ``inos``."""
    return [int(n) for n in os.listdir("/proc") if n.isdigit() and ns_ino(int(n)) in inos]


def smaps(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return f.read().strip()


def rotate(rows: list[Any], r: int) -> list[Any]:
    k = r % len(rows)
    return rows[k:] + rows[:k]


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def ratios(vals: dict[str, list[float]], ref: str) -> dict[str, dict[str, float]]:
    """Per-round ratio row/ref, as median/min/max over the rounds both have."""
    out = {}
    for k, xs in vals.items():
        rs = [x / y for x, y in zip(xs, vals[ref], strict=False) if y]
        if rs:
            out[k] = spread(rs)
    return out


def fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_r(s: dict[str, float] | None) -> str:
    if not s:
        return "-"
    return f"{s['median']:.2f}x [{s['min']:.2f}-{s['max']:.2f}]"


def table(title: str, unit: str, rows: list[str], vals: dict[str, list[float]],
          refs: list[tuple[str, str]]) -> dict[str, Any]:
    rat = {name: ratios(vals, ref) for name, ref in refs}
    heads = ["row", f"median {unit}", "min", "max"] + [f"x {n}" for n, _ in refs]
    lines = []
    for row in rows:
        if row not in vals:
            continue
        s = spread(vals[row])
        lines.append([row, fmt(s["median"]), fmt(s["min"]), fmt(s["max"])]
                     + [fmt_r(rat[n].get(row)) for n, _ in refs])
    widths = [max(len(h), *(len(ln[i]) for ln in lines)) for i, h in enumerate(heads)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)))
    for ln in lines:
        print("  ".join(c.ljust(w) for c, w in zip(ln, widths, strict=True)))
    return {"rounds": vals, "ratios": rat, "refs": dict(refs)}


# ---------------------------------------------------------------- part 1: CLI


def hyperfine_median_ms(cmd: list[str], runs: int, env: dict[str, str], tmp: Path) -> float:
    out = tmp / "hf.json"
    sh(["hyperfine", "-N", "--style", "none", "--warmup", "2", "--runs", str(runs),
        "--export-json", str(out), subprocess.list2cmdline(cmd)], env=env)
    times = json.loads(out.read_text())["results"][0]["times"]
    return statistics.median(times) * 1e3


def part1(a: argparse.Namespace, tmp: Path, floor: Path, script: str | None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env_script = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rows: list[tuple[str, list[str], dict[str, str], int]] = [
        ("C floor one-shot (floor once newpid)", [str(floor), "once", "newpid"], env, a.runs),
        ("C floor one-shot +NEWNS+proc", [str(floor), "once", "newpid-proc"], env, a.runs),
        ("unshare --pid --fork --mount-proc true",
         ["unshare", "--pid", "--fork", "--mount-proc", "true"], env, a.runs),
        ("bwrap --unshare-pid --proc /proc true",
         ["bwrap", "--unshare-pid", "--dev-bind", "/", "/", "--proc", "/proc", "true"],
         env, a.runs),
        ("python3 -S -c pass", [PY, "-S", "-c", "pass"], env, a.runs),
        ("python3 -S -m pidns run -- true",
         [PY, "-S", "-m", "pidns", "run", "--", "true"], env, a.runs),
        ("python3 -c pass", [PY, "-c", "pass"], env, a.py_runs),
        ("python3 -m pidns run -- true", [PY, "-m", "pidns", "run", "--", "true"], env,
         a.py_runs),
    ]
    if script:
        rows.append(("pidns run -- true (console script)", [script, "run", "--", "true"],
                     env_script, a.runs))
    for _, cmd, e, _ in rows:  # each must work before it is timed
        sh(cmd, env=e)
    vals: dict[str, list[float]] = {name: [] for name, *_ in rows}
    for r in range(a.rounds):
        for name, cmd, e, runs in rotate(rows, r):
            vals[name].append(hyperfine_median_ms(cmd, runs, e, tmp))
        print(f"  part 1 round {r + 1}/{a.rounds} done", file=sys.stderr)
    res = table("1. CLI end to end, hyperfine -N, ms per run (median of each round)", "ms",
                [n for n, *_ in rows], vals,
                [("py -S", "python3 -S -c pass"),
                 ("C floor", "C floor one-shot (floor once newpid)")])
    res["commands"] = {n: subprocess.list2cmdline(c) for n, c, *_ in rows}
    return res


# ---------------------------------------------------------------- part 2: in-process

CLONE_NEWPID = 0x20000000
CLONE_NEWNS = 0x00020000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def py_fork_unshare_fork_exec(libc: ctypes.CDLL) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            if libc.unshare(CLONE_NEWPID) != 0:
                os._exit(120)
            g = os.fork()
            if g == 0:
                os.execv("/bin/true", ["/bin/true"])
            _, st = os.waitpid(g, 0)
            os._exit(os.waitstatus_to_exitcode(st))
        finally:
            os._exit(121)
    _, st = os.waitpid(pid, 0)
    if st != 0:
        raise RuntimeError(f"fork+unshare+fork+exec: status {st:#x}")


def part2(a: argparse.Namespace, floor: Path) -> dict[str, Any]:
    import pidns
    from pidns._kernel import spawn as kspawn

    libc = _libc()

    def c_loop(mode: str) -> float:
        out = sh([str(floor), "loop", mode, str(a.c_iters)]).stdout
        return float(json.loads(out)["median_us"])

    def timed(fn: Any) -> float:
        for _ in range(5):
            fn()
        ts = []
        for _ in range(a.iters):
            t0 = time.perf_counter_ns()
            fn()
            ts.append((time.perf_counter_ns() - t0) / 1e3)
        return statistics.median(ts)

    def pidns_run() -> None:
        if pidns.run(["/bin/true"]).returncode != 0:
            raise RuntimeError("pidns.run failed")

    def low(opts: Any) -> Any:
        def go() -> None:
            got = kspawn.spawn(opts)
            _, st = os.waitpid(got.pid, 0)
            if st != 0:
                raise RuntimeError(f"spawn: status {st:#x}")
        return go

    def sp_unshare() -> None:
        subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], check=True)

    rows: list[tuple[str, Any]] = [
        ("C clone(NEWPID)+execv+wait", lambda: c_loop("newpid")),
        ("C clone(NEWPID|NEWNS)+mount proc+execv", lambda: c_loop("newpid-proc")),
        ("C clone(NEWPID|VM|VFORK)+execv", lambda: c_loop("newpid-vfork")),
        ('pidns.run(["/bin/true"])', lambda: timed(pidns_run)),
        ("_kernel.spawn(Options(...)) + waitpid", lambda: timed(low(kspawn.Options(
            ["/bin/true"])))),
        ("_kernel.spawn NEWPID only, no /proc", lambda: timed(low(kspawn.Options(
            ["/bin/true"], clone_flags=CLONE_NEWPID, mount_proc=False)))),
        ("subprocess.run([unshare -pf --mount-proc true])", lambda: timed(sp_unshare)),
        ("py os.fork+unshare(NEWPID)+os.fork+execv",
         lambda: timed(lambda: py_fork_unshare_fork_exec(libc))),
    ]
    vals: dict[str, list[float]] = {name: [] for name, _ in rows}
    for r in range(a.rounds):
        for name, fn in rotate(rows, r):
            vals[name].append(fn())
        print(f"  part 2 round {r + 1}/{a.rounds} done", file=sys.stderr)
    return table("2. In-process spawn of /bin/true, µs per call (median of each round)", "µs",
                 [n for n, _ in rows], vals,
                 [("C floor", "C clone(NEWPID)+execv+wait"),
                  ("C +proc", "C clone(NEWPID|NEWNS)+mount proc+execv")])


# ---------------------------------------------------------------- part 3: init


def init_rows(floor: Path, work: list[str]) -> list[tuple[str, list[str], str]]:
    """(name, argv, comm of the namespace's PID 1); ``work`` is the workload argv."""
    us = ["unshare", "--pid", "--fork", "--mount-proc"]
    pid_ns = [PY, "-S", "-m", "pidns", "run"]
    return [
        ("pidns run --init (pidns-init)", [*pid_ns, "--init", "--", *work], "pidns-init"),
        ("tini", [*us, "tini", "--", *work], "tini"),
        ("dumb-init", [*us, "dumb-init", *work], "dumb-init"),
        ("catatonit", [*us, "catatonit", "--", *work], "catatonit"),
    ]


def wait_for(pred: Any, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.005)
    return None


def end_namespace(p: subprocess.Popen[Any], init_pid: int | None) -> None:
    """SIGKILL the namespace's PID 1 (the kernel then kills the rest), then the launcher."""
    if init_pid is not None:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()  # by PID: Popen.kill is kill(p.pid, SIGKILL)
        p.wait(timeout=10)


def idle_memory(name: str, cmd: list[str], init_comm: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    # stderr dropped: util-linux 2.38 unshare prints "sigprocmask unblock failed" when
    # its child is SIGKILLed (it tries to re-raise SIGKILL on itself)
    p = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    init_pid = None
    try:
        init_pid = wait_for(lambda: next((c for c in children(p.pid)
                                          if comm(c) == init_comm), None))
        if init_pid is None:
            raise RuntimeError(f"{name}: no {init_comm} under {p.pid}")
        # idle = the workload has exec'd
        if not wait_for(lambda: any(comm(c) == "sleep" for c in children(init_pid))):
            raise RuntimeError(f"{name}: sleep did not start")
        time.sleep(0.1)
        ino = ns_ino(init_pid)
        m1, ml = smaps(init_pid), smaps(p.pid)
        out = {"pss": m1["Pss"], "rss": m1["Rss"], "pss_anon": m1.get("Pss_Anon", 0),
               "launcher_comm": comm(p.pid), "launcher_pss": ml["Pss"],
               "launcher_rss": ml["Rss"], "ns": ino}
    finally:
        end_namespace(p, init_pid)
    if ino is not None:
        SEEN_NS[ino] = ticks_now()
        left = in_namespaces({ino})  # right away, before the inode can be reused
        if left:
            raise RuntimeError(f"{name}: processes {left} left in pid:[{ino}]")
    return out


def orphan_run(cmd: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    wall = (time.perf_counter() - t0) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{cmd}: status {done.returncode}: {done.stderr.strip()}")
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1]
    return {"wall_ms": wall, **json.loads(line)}


def part3(a: argparse.Namespace, floor: Path) -> dict[str, Any]:
    mem_rows = init_rows(floor, ["sleep", "60"])
    mem: dict[str, list[dict[str, Any]]] = {n: [] for n, *_ in mem_rows}
    for r in range(a.init_rounds):
        for name, cmd, ic in rotate(mem_rows, r):
            mem[name].append(idle_memory(name, cmd, ic))
    print("  part 3 memory done", file=sys.stderr)
    pss = {n: [float(x["pss"]) for x in v] for n, v in mem.items()}
    res_mem = table("3a. Idle PID 1 memory (smaps_rollup of the namespace's PID 1; child = "
                    "sleep 60), PSS kB", "PSS kB", list(pss), pss, [("tini", "tini")])
    print("   RSS kB / launcher (outside the namespace) PSS kB, medians:")
    for n, v in mem.items():
        print(f"   {n}: RSS {statistics.median(x['rss'] for x in v):.0f}; launcher "
              f"{v[0]['launcher_comm']} PSS {statistics.median(x['launcher_pss'] for x in v):.0f}"
              f" RSS {statistics.median(x['launcher_rss'] for x in v):.0f}")
    res_mem["samples"] = mem

    work = [str(floor), "orphans", str(a.orphans), "2000"]
    orph_rows = [(n, c) for n, c, _ in init_rows(floor, work)]
    orph_rows.append(("no init: pidns run (workload is PID 1)",
                      [PY, "-S", "-m", "pidns", "run", "--", str(floor), "orphans",
                       str(a.orphans), "100"]))
    orph: dict[str, list[dict[str, Any]]] = {n: [] for n, _ in orph_rows}
    for r in range(a.init_rounds):
        for name, cmd in rotate(orph_rows, r):
            orph[name].append(orphan_run(cmd))
    print("  part 3 orphans done", file=sys.stderr)
    wall = {n: [x["wall_ms"] for x in v] for n, v in orph.items()}
    res_orph = table(f"3b. {a.orphans} double-forked orphans: wall ms until the launcher "
                     "exits", "ms", list(wall), wall, [("tini", "tini")])
    print("   zombies left at the end (max over rounds) / workload loop ms (median):")
    for n, v in orph.items():
        print(f"   {n}: zombies {max(x['zombies_final'] for x in v)}; loop "
              f"{statistics.median(x['loop_ms'] for x in v):.0f} ms")
    res_orph["samples"] = orph
    return {"memory": res_mem, "orphans": res_orph}


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds, parts 1-2")
    ap.add_argument("--runs", type=int, default=20, help="hyperfine runs per row per round")
    ap.add_argument("--py-runs", type=int, default=10,
                    help="hyperfine runs for the rows with site (slow)")
    ap.add_argument("--iters", type=int, default=150, help="Python calls per row per round")
    ap.add_argument("--c-iters", type=int, default=400, help="C floor loop iterations")
    ap.add_argument("--orphans", type=int, default=2000)
    ap.add_argument("--init-rounds", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--script", default="auto",
                    help="pidns console script: auto (build a venv), none, or a path")
    a = ap.parse_args()
    parts = {int(x) for x in a.parts.split(",")}
    if os.geteuid() != 0:
        raise SystemExit("bench_spawn.py needs root (tini/unshare rows make PID namespaces)")
    for tool in ("hyperfine", "gcc", "unshare", "bwrap", "tini", "dumb-init", "catatonit"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="bench_spawn."))
    floor = build_floor(tmp)
    sh([PY, "-m", "compileall", "-q", str(SRC / "pidns")])  # as an install would
    script_note = "not used"
    script: str | None = None
    if 1 in parts:
        if a.script == "auto":
            script, script_note = build_script(tmp)
        elif a.script != "none":
            script, script_note = a.script, "given with --script"
    print(f"python: {PY}; console script: {script or '-'} ({script_note})", file=sys.stderr)
    load0 = loadavg()
    t0 = time.monotonic()
    results: dict[str, Any] = {
        "argv": sys.argv, "python": PY, "kernel": os.uname().release,
        "nproc": os.cpu_count(), "loadavg_start": load0, "script": script,
        "script_note": script_note,
        "git_head": sh(["git", "-C", str(ROOT), "rev-parse", "HEAD"]).stdout.strip(),
        "git_dirty": sh(["git", "-C", str(ROOT), "status", "--short"]).stdout.splitlines(),
        "pidns_init": sh(["file", "-b", str(SRC / "pidns" / "_kernel" / "pidns-init")]).stdout
        .strip(),
    }
    try:
        if 1 in parts:
            results["cli"] = part1(a, tmp, floor, script)
        if 2 in parts:
            results["spawn"] = part2(a, floor)
        if 3 in parts:
            results["init"] = part3(a, floor)
    finally:
        left_desc = wait_for(lambda: not descendants(os.getpid()), 5) is None
        left_ns, reused = leftovers()
        results["cleanup"] = {"descendants_left": descendants(os.getpid()),
                              "namespace_inodes_checked": len(SEEN_NS),
                              "processes_left_in_them": left_ns,
                              "later_processes_in_reused_inodes": reused}
        ok = not left_desc and not left_ns
        print(f"\ncleanup: {'ok' if ok else 'NOT OK'}: {len(descendants(os.getpid()))} "
              f"descendants left; {len(left_ns)} processes left in the namespaces this run "
              f"made ({len(SEEN_NS)} inodes, each also checked right after its end; "
              f"{len(reused)} later processes of others in reused inodes ignored)")
    results["loadavg_end"] = loadavg()
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    out = tmp / "results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"load average: start {load0}; end {results['loadavg_end']}; "
          f"{results['elapsed_s']} s")
    print(f"JSON: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
