"""Where one pipeline's time goes: runs it under py-spy (all threads, native frames included so zlib and orjson
show up) against the same server and GCS emulator as `bench.run`, and prints the functions with the most samples,
self and total.

`python -m bench.profile collector --shape slack --events 300000` (writes bench/results/profile-*.txt).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.dataset import SHAPES
from bench.pipelines import BUCKET, PIPELINES
from bench.run import RESULTS, ApiServer, pipeline_env


def _frame(raw: str) -> str:
    name, _, where = raw.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]}" if where else name


def summarise(collapsed: Path, pipeline: str, top: int = 25) -> str:
    """Only the samples inside the pipeline's work (imports excluded), from every thread it started."""
    own, total, samples = collections.Counter(), collections.Counter(), 0
    callers: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        count = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        if any(f.startswith("_preload ") or f.startswith("_find_and_load ") for f in frames):
            continue
        if not any(
            f.startswith(f"{pipeline} (pipelines") or f.startswith("Thread.run ") or f.startswith("Thread._bootstrap")
            for f in frames
        ):
            continue
        samples += count
        own[frames[-1]] += count
        python_frames = [f for f in frames if ".py" in f]
        callers[frames[-1]][python_frames[-1] if python_frames else "?"] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples", "", "self (leaf) share:"]
    lines += [f"  {100 * c / samples:5.1f}%  {name}" for name, c in own.most_common(top)]
    lines += ["", "callers of the top native leaves (python frame above them):"]
    for name, _ in own.most_common(6):
        lines += [f"  {name}:"] + [
            f"    {100 * c / samples:5.1f}%  {caller}" for caller, c in callers[name].most_common(3)
        ]
    lines += ["", "total (inclusive) share:"]
    lines += [f"  {100 * c / samples:5.1f}%  {name}" for name, c in total.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    from sandbox.gcs import GcsEmulatorProcess

    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(PIPELINES))
    parser.add_argument("--shape", choices=sorted(SHAPES), default="slack")
    parser.add_argument("--events", type=int, default=300_000)
    args = parser.parse_args()
    py_spy = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory(prefix="auditlogs-profile-") as tmp:
        workdir = Path(tmp)
        server = ApiServer(args.shape, args.events, workdir)
        try:
            with GcsEmulatorProcess((BUCKET,)) as gcs:
                env = pipeline_env(server, gcs, workdir)
                collapsed = workdir / "stacks.txt"
                subprocess.run(
                    [
                        str(py_spy),
                        "record",
                        "--threads",
                        "--native",
                        "--rate",
                        "250",
                        "--format",
                        "raw",
                        "--output",
                        str(collapsed),
                        "--",
                        sys.executable,
                        "-m",
                        "bench.pipelines",
                        args.name,
                        "--shape",
                        args.shape,
                        "--events",
                        str(args.events),
                        "--url",
                        server.url,
                        "--workdir",
                        str(workdir / "out"),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
        finally:
            server.stop()
        text = summarise(collapsed, PIPELINES[args.name].__name__)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-{args.name}-{args.shape}-{args.events}.txt"
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
