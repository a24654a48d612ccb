"""Local sampling + adjudication of the hard pages vs every page through the adjudicator (not a test).

The worker is the small local model with K samples; the adjudicator is a bigger model behind
a real OpenAI-compatible server on loopback (``python -m llama_cpp.server``).  Two runs over the
same eval set:

* selective: ``--adjudicate disputed`` (pages whose samples disagree, that break a rule, or
  that failed locally go to the adjudicator);
* all: ``--adjudicate always`` (every page goes to the adjudicator: the all-API baseline).

Prints F1 of each, the F1 ratio (target >= 0.98), the share of pages adjudicated (target
<= 20 %) and the adjudicator token ratio, and writes ``benchmarks/results/adjudication.json``.

    python benchmarks/adjudication.py [--worker qwen2.5-coder-0.5b] [--adjudicator qwen2.5-coder-1.5b]
                                      [--samples 3] [--per-locale 5]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import write_results

from pipeline.config.settings import AdjudicationConfig, ModelConfig, build_config
from pipeline.devtools.evalset import generate_evalset
from pipeline.devtools.llama_server import llama_server
from pipeline.eval.score import evaluate
from pipeline.model import registry as models
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema
from pipeline.sink.dataset import manifests, read_table

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"


def run(evalset: Path, out: Path, worker: str, samples: int, adjudicator: str, base_url: str,
        when: str, below: float = 1.0) -> dict[str, Any]:
    # Single-threaded processes (2 workers + the server): no OpenMP busy-waiting, so sharing the
    # cores only time-slices; the server mostly runs while a worker waits for its answer.
    model = ModelConfig(path=models.model_path(worker), n_threads=1, n_ctx=8192, max_tokens=2048, samples=samples)
    # llama-cpp-python's server takes a schema through "json_object", not "json_schema"; text model: no image
    adjudication = AdjudicationConfig(provider="openai", model=adjudicator, base_url=base_url, when=when,
                                      below=below, response_format="json_object", send_image=False,
                                      cache_dir=out.parent / f"cache-{out.name}", timeout_s=1800, max_retries=1)
    cfg = build_config(schema_path=SCHEMA, inputs=(evalset,), output=out, model=model, workers=2, backend="text",
                       adjudication=adjudication)
    started = time.perf_counter()
    summary = execute_run(cfg, load_schema(SCHEMA))
    seconds = time.perf_counter() - started
    report = evaluate(evalset, out).to_json()
    api = manifests(out)[-1]["adjudication"]
    return {"mode": when, "pages": summary.pages, "pages_adjudicated": api["pages_adjudicated"],
            "adjudication_rate": api["rate"], "adjudicator_input_tokens": api["input_tokens"],
            "adjudicator_output_tokens": api["output_tokens"], "seconds": round(seconds, 1),
            "f1": report["overall"]["f1"], "precision": report["overall"]["precision"],
            "recall": report["overall"]["recall"], "adjudicated_pages": _why(out)}


def _why(out: Path) -> list[str]:
    """Which pages went to the adjudicator and why (the README's page-by-page reading)."""
    rows = read_table(out, "pages", ["source_path", "page_number", "page_count", "adjudication_reason"]).to_pylist()
    return sorted(f"{Path(r['source_path']).name} p{r['page_number']}/{r['page_count']}: {r['adjudication_reason']}"
                  for r in rows if r["adjudication_reason"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", default="qwen2.5-coder-0.5b")
    parser.add_argument("--adjudicator", default="qwen2.5-coder-1.5b")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--below", type=float, default=0.6,
                        help="adjudicate fields whose sample agreement is below this (0.6 with 3 samples: no majority)")
    parser.add_argument("--per-locale", type=int, default=5, help="single-page invoices per language")
    parser.add_argument("--evalset", type=Path, help="use this eval set folder instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        evalset = args.evalset or tmp / "evalset"
        if not args.evalset:
            generate_evalset(evalset, per_locale=args.per_locale)
        with llama_server(models.model_path(args.adjudicator), n_threads=1, n_ctx=8192) as base_url:
            selective = run(evalset, tmp / "selective", args.worker, args.samples, args.adjudicator, base_url,
                            "disputed", args.below)
            print("selective:", selective, flush=True)
            everything = run(evalset, tmp / "all", args.worker, 1, args.adjudicator, base_url, "always")
            print("all:", everything, flush=True)
    tokens = lambda r: r["adjudicator_input_tokens"] + r["adjudicator_output_tokens"]  # noqa: E731
    result = {
        "machine": {"cpu": platform.processor() or platform.machine()},
        "worker": {"model": args.worker, "sha256": models.installed(args.worker)["files"]["model"]["sha256"],  # type: ignore[index]
                   "samples": args.samples, "adjudicate_below": args.below},
        "adjudicator": {"model": args.adjudicator,
                        "sha256": models.installed(args.adjudicator)["files"]["model"]["sha256"]},  # type: ignore[index]
        "selective": selective, "all": everything,
        "f1_ratio": round(selective["f1"] / everything["f1"], 3) if everything["f1"] else None,
        "share_adjudicated": selective["adjudication_rate"],
        "token_ratio": round(tokens(selective) / tokens(everything), 3) if tokens(everything) else None,
    }
    print(f"\n{'run':<12}{'F1':>7}{'adjudicated':>13}{'adj. tokens':>13}{'seconds':>9}")
    for name, r in (("selective", selective), ("all", everything)):
        print(f"{name:<12}{r['f1']:>7.3f}{r['adjudication_rate']:>12.0%} {tokens(r):>12}{r['seconds']:>9}")
    print(f"\nF1 ratio {result['f1_ratio']} (target >= 0.98), pages adjudicated {result['share_adjudicated']:.0%} "
          f"(target <= 20%), adjudicator token ratio {result['token_ratio']}")
    # the setting (0.5B worker) is adjudication.json; other workers get their own file
    write_results("adjudication" if args.worker == parser.get_default("worker") else f"adjudication-{args.worker}",
                  result)


if __name__ == "__main__":
    main()
