"""Load time and memory of the shipped playbooks + inventory: the project's loader (PyYAML)
against ruamel.yaml's round-trip loader, which records positions itself.

Run: ``.venv/bin/python -m benchmarks.yaml_loading`` (ruamel.yaml must be installed for the
second column; it is not a dependency of the project). Each way runs in a fresh interpreter so
that imports and caches of one do not count for the other. Figures: median and p90 of
``BENCH_REPS`` (default 30) loads of every file, the tracemalloc peak of one load of every
file, and the process RSS after importing the library and after loading. The figures and the
decision they support are in docs/validation.md.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from benchmarks._common import REPO

FILES = [REPO / "inventory.yaml", *sorted((REPO / "playbooks").glob("*.yaml"))]

PROBE = r"""
import gc, json, sys, time, tracemalloc
from pathlib import Path
import psutil
proc = psutil.Process()
way, reps, files = sys.argv[1], int(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
rss_start = proc.memory_info().rss
if way == "pyyaml":
    import yaml
else:
    import ruamel.yaml
rss_library = proc.memory_info().rss
import agent.playbook  # the rest of the project's loading code, in both ways
if way == "pyyaml":
    from agent.playbook.yaml_source import load_yaml
    def load_all():
        out = []
        for path in files:
            doc = load_yaml(path)
            assert not doc.diagnostics, doc.diagnostics
            out.append((doc.data, doc.marks))
        return out
else:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    def marks(node, path, out):
        # what the project needs from a loader: the line/column of every key and value
        if isinstance(node, CommentedMap):
            for key in node:
                if key in node.lc.data:
                    out[(*path, key)] = tuple(node.lc.data[key])
                marks(node[key], (*path, key), out)
        elif isinstance(node, CommentedSeq):
            for i, item in enumerate(node):
                if i in node.lc.data:
                    out[(*path, i)] = tuple(node.lc.data[i])
                marks(item, (*path, i), out)
    def load_all():
        out = []
        for path in files:
            yaml = YAML(typ="rt")
            data = yaml.load(path.read_text(encoding="utf-8"))
            found = {}
            marks(data, (), found)
            out.append((data, found))
        return out
load_all()  # warm: first-use compilation of regexes
times = []
for _ in range(reps):
    gc.collect()
    t0 = time.perf_counter()
    load_all()
    times.append((time.perf_counter() - t0) * 1000)
gc.collect()
tracemalloc.start()
kept = load_all()
current, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({"times_ms": times, "peak_kib": peak / 1024, "kept_kib": current / 1024,
                  "rss_library_mib": (rss_library - rss_start) / 2**20,
                  "rss_total_mib": proc.memory_info().rss / 2**20}))
"""


def measure(way: str, reps: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, way, str(reps), *map(str, FILES)], cwd=REPO,
                         capture_output=True, text=True, timeout=600, check=True)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    times = sorted(raw.pop("times_ms"))
    return {"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1], **raw}


def main() -> None:
    reps = int(os.environ.get("BENCH_REPS", "30"))
    size = sum(p.stat().st_size for p in FILES)
    print(f"{len(FILES)} files, {size / 1024:.1f} KiB, {reps} repetitions, python {sys.version.split()[0]}")
    rows = {"pyyaml": measure("pyyaml", reps)}
    try:
        import ruamel.yaml  # noqa: F401  (only to know whether the second column can be measured)
        rows["ruamel.yaml rt"] = measure("ruamel", reps)
    except ImportError:
        print("ruamel.yaml is not installed: only the project's loader is measured")
    keys = ["median_ms", "p90_ms", "peak_kib", "kept_kib", "rss_library_mib", "rss_total_mib"]
    print("| way | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
