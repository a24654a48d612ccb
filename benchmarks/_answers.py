"""Recorded model answers for benchmarks: pay for the model once, measure what follows it many times.

A change to voting, rules, grounding or flagging does not change what the model answers; rerunning
a 3-sample benchmark for it costs half an hour on this machine.  With ``--answers DIR`` a benchmark
starts Ray with :func:`install` as every worker's setup hook: each model call is looked up in
``DIR`` by everything that decides its answer (model file, chat messages, grammar, sampling
settings) and answered from there; a call not found (a new prompt, a new page) runs the model and
is recorded.  The rest of the pipeline runs as in a real run.  Not for production: an answer kept
here is only as current as the model file name says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

ENV = "EXTRACT_BENCH_ANSWERS"


def _key(backend: Any, messages: list[dict[str, Any]], attempt: int, gbnf: str | None) -> str:
    settings = {k: v for k, v in backend.sampling(attempt, gbnf).items() if k != "grammar"}
    blob = json.dumps([backend.name, messages, gbnf or backend.gbnf, settings], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def install() -> None:
    """Wrap ``LlamaBackend.chat`` with the lookup (a Ray worker setup hook; needs ``ENV`` set)."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    from pipeline.model.base import Completion
    from pipeline.model.llama import LlamaBackend

    store = Path(folder)
    store.mkdir(parents=True, exist_ok=True)
    run_model = LlamaBackend.chat

    def chat(self: Any, messages: list[dict[str, Any]], attempt: int, gbnf: str | None = None) -> Completion:
        path = store / f"{_key(self, messages, attempt, gbnf)}.json"
        if path.is_file():
            return Completion(**json.loads(path.read_text()))
        completion = run_model(self, messages, attempt, gbnf)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(completion)))
        tmp.replace(path)
        return completion

    LlamaBackend.chat = chat  # type: ignore[method-assign]


def start_ray(folder: Path, cpus: int) -> None:
    """An embedded Ray whose workers answer from ``folder`` (the run then uses it as started)."""
    import ray

    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "_answers.install",
                          "env_vars": {ENV: str(folder.resolve()), "PYTHONPATH": path}})
