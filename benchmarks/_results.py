"""Where benchmark scripts keep their numbers: ``benchmarks/results/NAME.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {target}")
    return target
