"""Where benchmark scripts keep their numbers: ``benchmarks/results/NAME.json``."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from os import cpu_count
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` with the provenance of this write (``written``): a figure in the docs names its
    file, and the file says which command, commit and machine produced it, and when.  Files that
    gather entries from several runs (``real_accuracy``, ``speed``, ``trust``) keep each entry's own
    provenance too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    target.write_text(json.dumps({**data, "written": provenance()}, indent=2) + "\n")
    print(f"wrote {target}")
    return target


def provenance() -> dict[str, Any]:
    """What a figure needs beside it: the command, the commit (dirty if the tree was), the machine, the date."""
    import pipeline

    code = Path(pipeline.__file__).resolve().parents[1]  # the pipeline measured: another checkout on PYTHONPATH too
    return {"command": " ".join(["python", *sys.argv]), "commit": _commit(Path(__file__).resolve().parents[1]),
            "pipeline_commit": _commit(code),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpu": cpu_model(), "cores": cpu_count(), "python": platform.python_version()}}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _commit(root: Path) -> str:
    """The checkout's commit, "+changes" where tracked files differ from it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=root).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=root).stdout.strip()
    return commit + ("+changes" if dirty else "")
