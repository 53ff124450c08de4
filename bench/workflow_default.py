"""Wall time, peak memory and per-stage time shares of a workflow run (default: config/config.yaml).

    .venv/bin/python bench/workflow_default.py [--workdir DIR] [--cores 2] [--configfile FILE]
    .venv/bin/python bench/workflow_default.py --parse-only --workdir DIR   # an earlier run

Runs `snakemake --cores N` in a fresh working directory (the repository's Snakefile through
`--directory`), samples the summed resident memory of the whole process tree once a second,
and afterwards reads Snakemake's log for each job's start and finish time. Prints the wall
time, the peak summed RSS, the CPU time of all processes, the 1-minute load average before and
after (other work on the machine inflates wall times), and per rule: jobs, summed job wall
time and its share.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tree_rss_kb(root: int) -> int:
    """Summed VmRSS (kB) of `root` and all its descendants."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as handle:
                total += next((int(line.split()[1]) for line in handle
                               if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                stack += [int(child) for child in handle.read().split()]
        except OSError:
            continue
    return total


def job_times(workdir: Path) -> dict[str, list[float]]:
    """Rule -> wall seconds of each finished job, from the newest Snakemake log in `workdir`."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"no Snakemake log in {workdir}/.snakemake/log")
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")
    started: dict[str, tuple[str, datetime]] = {}
    times: dict[str, list[float]] = defaultdict(list)
    now, rule = None, None
    for line in logs[-1].read_text().splitlines():
        if match := stamp.match(line.strip()):
            now = datetime.strptime(match[1], "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line.strip()):
            rule = m[1]
        elif (m := re.match(r"^jobid: (\d+)", line.strip())) and rule and now:
            started[m[1]] = (rule, now)
            rule = None
        elif (m := re.match(r"^Finished jobid: (\d+)", line.strip())) and now:
            if m[1] in started:
                name, start = started.pop(m[1])
                times[name].append((now - start).total_seconds())
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="working directory (default: a new temp one)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default=str(ROOT / "config" / "config.yaml"))
    parser.add_argument("--parse-only", action="store_true", help="only read an earlier run's log")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="steik-workflow-"))
    if not args.parse_only:
        snakemake = Path(sys.executable).parent / "snakemake"
        command = [str(snakemake), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                   "--cores", str(args.cores), "--configfile", args.configfile,
                   "--profile", str(ROOT / "profiles" / "default")]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = [0]

        def sample() -> None:
            while process.poll() is None:
                peak[0] = max(peak[0], tree_rss_kb(process.pid))
                time.sleep(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        wall = time.perf_counter() - start
        sampler.join()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"workdir {workdir}: exit {code}, wall {wall / 60:.1f} min on {args.cores} cores")
        cpu = (usage.ru_utime + usage.ru_stime) / 60
        print(f"peak summed RSS {peak[0] / 1024:.0f} MB; CPU time of all processes {cpu:.1f} min")
        print(f"1-min load average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")
    times = job_times(workdir)
    total = sum(sum(v) for v in times.values())
    print(f"{'rule':<14} {'jobs':>5} {'job wall s':>11} {'share':>7}")
    for rule, values in sorted(times.items(), key=lambda item: -sum(item[1])):
        share = 100 * sum(values) / total
        print(f"{rule:<14} {len(values):>5} {sum(values):>11.0f} {share:>6.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
