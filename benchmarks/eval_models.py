"""Quality and speed of the real small text models on the generated eval set (not a test).

For each model: ``extract run`` (text backend: PDF text layer, OCR for scans) over the eval set,
then ``extract eval``.  Prints document-level field F1, pages/s and peak memory (driver +
workers), and writes the numbers to ``benchmarks/results/eval_models.json``.

    python benchmarks/eval_models.py [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--per-locale 15]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _answers import start_ray
from _results import write_results

from pipeline.config.settings import ModelConfig, build_config, cpu_count
from pipeline.devtools.evalset import generate_evalset
from pipeline.eval.score import evaluate
from pipeline.model import registry as models
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema

ROOT = Path(__file__).resolve().parents[1]


def _rss_total() -> int:
    total = psutil.Process().memory_info().rss
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "PageWorker" in " ".join(proc.info["cmdline"] or []):
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def run_one(name: str, evalset: Path, out: Path, workers: int, samples: int = 1) -> dict[str, object]:
    threads = max(1, cpu_count() // workers)
    model = ModelConfig(path=models.model_path(name), n_threads=threads, n_ctx=8192, max_tokens=2048,
                        samples=samples)
    cfg = build_config(schema_path=ROOT / "schemas" / "invoice.json", inputs=(evalset,), output=out,
                       model=model, workers=workers, backend="text")
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_total())
            time.sleep(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    summary = execute_run(cfg, load_schema(cfg.schema_path))
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    report = evaluate(evalset, out).to_json()
    return {"model": name, "sha256": models.installed(name)["files"]["model"]["sha256"],  # type: ignore[index]
            "workers": workers, "threads": threads, "samples": samples, "amounts": model.amounts,
            "pages": summary.pages, "pages_ok": summary.ok,
            "documents": report["documents"], "seconds": round(seconds, 1),
            "pages_per_s": round(summary.pages / seconds, 3), "peak_rss_mib": round(peak[0] / 2**20),
            "f1": report["overall"]["f1"], "precision": report["overall"]["precision"],
            "recall": report["overall"]["recall"], "fields": {k: v["f1"] for k, v in report["fields"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--per-locale", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=1, help="answers per page (the README table used 1)")
    parser.add_argument("--evalset", type=Path, help="use this eval set folder instead of generating one")
    parser.add_argument("--results", default="eval_models",
                        help="results file name (benchmarks/results/NAME.json): another for a subset or a setting")
    parser.add_argument("--answers", type=Path,
                        help="answer the model's calls from this folder where it has them, recording the rest "
                             "(benchmarks/_answers.py; the pages/s are then not the model's)")
    args = parser.parse_args()
    if args.answers:
        start_ray(args.answers, cpus=cpu_count())
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        evalset = args.evalset or Path(tmp) / "evalset"
        if not args.evalset:
            generate_evalset(evalset, per_locale=args.per_locale)
        for name in args.models:
            results.append(run_one(name, evalset, Path(tmp) / f"out-{name}", args.workers, args.samples))
            r = results[-1]
            print(f"{name}: F1 {r['f1']:.3f} (P {r['precision']:.3f}, R {r['recall']:.3f})  "
                  f"{r['pages_per_s']} pages/s  peak RSS {r['peak_rss_mib']} MiB  "
                  f"{r['documents']} documents, {r['pages']} pages in {r['seconds']} s", flush=True)
    print(f"\n{'model':<22}{'F1':>7}{'pages/s':>9}{'peak MiB':>10}")
    for r in results:
        print(f"{r['model']:<22}{r['f1']:>7.3f}{r['pages_per_s']:>9.3f}{r['peak_rss_mib']:>10}")
    print("\nper-field F1:")
    for field in results[0]["fields"]:
        print(f"  {field:<26}" + "".join(f"{r['fields'][field]:>8.3f}" for r in results))
    write_results(args.results, {"results": results})


if __name__ == "__main__":
    main()
