"""Pipeline performance against llama.cpp itself, measured in one run (not a test).

1. overhead: the same Llama calls on pre-rendered pages in a plain loop vs the full
   ``execute_run`` on the same pages, model and threads -> ratio of pages/s (target >= 0.95);
2. scaling: 1 worker x 1 thread, 1 x 2 and 2 x 1 on this machine -> speed-up over 1 x 1;
3. memory: USS/PSS of each worker with 1 and 2 workers (text weights are mmap-shared);
4. render: PyMuPDF pages/s at 150 and 200 dpi;
5. start-up: ``extract run`` on 10 pages with the tiny VLM, wall time including Ray start;
6. llama.cpp's own scaling: the plain loop in 2 processes x 1 thread vs 1 x 1, the ceiling the
   pipeline's 2 x 1 is compared with (two llama.cpp processes share caches and memory bandwidth);
7. prefix reuse: seconds per sample for the first and the later samples of a page (text: the
   prompt is cached; VLM: later samples skip the image encoding and the prompt evaluation);
8. image size (VLM path, tiny model: mechanics only, its answers are noise): dpi -> pixels,
   prompt tokens and seconds per page, render included; and the image tokens that
   ``--max-pixels`` gives a Qwen-VL style projector (computed from its patch size).

Prints a table and writes ``benchmarks/results/perf.json``.

    python benchmarks/perf.py [--model qwen2.5-coder-0.5b] [--pages 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from _results import write_results

from pipeline.config.settings import ModelConfig, build_config
from pipeline.devtools.samples import many_pages_pdf
from pipeline.devtools.tiny_vlm import TinyVLM, make_tiny_vlm
from pipeline.model import registry as models
from pipeline.model.base import PageInput
from pipeline.model.llama import LlamaTextBackend
from pipeline.render.pages import page_text, render_page
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"


def worker_memory() -> list[dict[str, float]]:
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "PageWorker" in " ".join(proc.info["cmdline"] or []):
                full = proc.memory_full_info()
                out.append({"uss_mib": full.uss / 2**20, "pss_mib": full.pss / 2**20, "rss_mib": full.rss / 2**20})
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def pipeline_run(pdf: Path, model: Path, workers: int, threads: int, out: Path) -> dict[str, Any]:
    cfg = build_config(schema_path=SCHEMA, inputs=(pdf,), output=out, workers=workers, backend="text",
                       model=ModelConfig(path=model, n_threads=threads, max_tokens=1024, samples=1))
    memory: list[list[dict[str, float]]] = []
    first = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            mem = worker_memory()
            if len(mem) == workers:
                memory.append(mem)
            time.sleep(1.0)

    def on_row(row: Any, total: int) -> None:
        if not first[0]:
            first[0] = time.perf_counter()

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    summary = execute_run(cfg, load_schema(SCHEMA), progress=on_row)
    stop.set()
    thread.join()
    wall = time.perf_counter() - started
    # steady state: from the first finished page to the last (excludes Ray and model start-up)
    steady = (time.perf_counter() - first[0]) if first[0] else wall
    peak = max(memory, key=lambda m: sum(w["pss_mib"] for w in m)) if memory else []
    return {"workers": workers, "threads": threads, "pages": summary.pages, "wall_s": round(wall, 2),
            "pages_per_s": round(summary.pages / wall, 4),
            "steady_pages_per_s": round((summary.pages - 1) / steady, 4) if summary.pages > 1 else None,
            "memory": peak}


def _text_backend(model: Path, threads: int) -> LlamaTextBackend:
    return LlamaTextBackend(ModelConfig(path=model, n_threads=threads, max_tokens=1024, samples=1),
                            load_schema(SCHEMA), "0" * 64)


def _timed_loop(pdf: Path, model: Path, threads: int, numbers: list[int], ready: Any = None) -> float:
    """Seconds for the same backend calls on texts read beforehand, after one warm-up page
    (like the first page of a run); ``ready`` is waited on just before the clock starts."""
    texts = [page_text(pdf, n) for n in numbers]
    backend = _text_backend(model, threads)
    backend.extract(PageInput(str(pdf), numbers[0], b"", texts[0]))
    if ready is not None:
        ready.wait()
    started = time.perf_counter()
    for n, text in zip(numbers, texts, strict=True):
        backend.extract(PageInput(str(pdf), n, b"", text))
    seconds = time.perf_counter() - started
    backend.close()
    return seconds


def plain_loop(pdf: Path, model: Path, threads: int, pages: int) -> dict[str, Any]:
    """llama.cpp alone: no Ray, no Parquet."""
    seconds = _timed_loop(pdf, model, threads, list(range(1, pages + 1)))
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 4)}


def _plain_worker(pdf: str, model: str, numbers: list[int], barrier: Any, results: Any) -> None:
    # both processes start their timed loops together
    results.put(_timed_loop(Path(pdf), Path(model), 1, numbers, ready=barrier))


def plain_parallel(pdf: Path, model: Path, processes: int, pages: int) -> dict[str, Any]:
    """llama.cpp alone in ``processes`` single-threaded processes, the pages split between them."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_plain_worker, args=(str(pdf), str(model), list(range(1 + i, pages + 1, processes)),
                                                    barrier, results)) for i in range(processes)]
    for proc in procs:
        proc.start()
    seconds = max(results.get() for _ in procs)
    for proc in procs:
        proc.join()
    return {"processes": processes, "pages": pages, "seconds": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 4)}


def _tiny_vlm_backend(tiny: TinyVLM) -> Any:
    from pipeline.model.llama import LlamaVLMBackend
    from pipeline.model.preflight import preflight

    schema = load_schema(SCHEMA)
    cfg = ModelConfig(path=tiny.model, mmproj=tiny.mmproj, n_threads=2, max_tokens=1024)
    handler = preflight(cfg, schema)
    assert handler is not None  # the VLM backend always names one
    return LlamaVLMBackend(cfg, schema, "0" * 64, handler)


def prefix_reuse(pdf: Path, model: Path, tiny: TinyVLM) -> dict[str, Any]:
    """Seconds per sample: the first sample of a page evaluates the prompt, later ones reuse it."""
    out: dict[str, Any] = {}
    text = _text_backend(model, 2)
    text.execute(PageInput(str(pdf), 1, b"", page_text(pdf, 1)), 0)  # warm-up: system + schema cached
    out["text"] = _per_sample(text, PageInput(str(pdf), 2, b"", page_text(pdf, 2)))
    text.close()
    vlm = _tiny_vlm_backend(tiny)
    page = PageInput(str(pdf), 1, render_page(pdf, 1, 150, 4_000_000).png, "")
    vlm.execute(page, 0)  # warm-up
    out["tiny_vlm_reused"] = _per_sample(vlm, page)
    vlm._prompt = None
    out["tiny_vlm_full"] = _per_sample(vlm, page, force_full=True)
    vlm.close()
    return out


def image_size(pdf: Path, tiny: TinyVLM) -> dict[str, Any]:
    from pipeline.model.context import image_tokens

    vlm = _tiny_vlm_backend(tiny)
    vlm.execute(PageInput(str(pdf), 1, render_page(pdf, 1, 150, 4_000_000).png, ""), 0)  # warm-up
    rows = []
    for dpi in (100, 150, 200, 300):
        started = time.perf_counter()
        page = render_page(pdf, 1, dpi, 4_000_000)
        prompt = vlm.execute(PageInput(str(pdf), 1, page.png, ""), 0).prompt_tokens
        rows.append({"dpi": dpi, "pixels": page.width * page.height, "png_kib": round(len(page.png) / 1024, 1),
                     "prompt_tokens": prompt, "seconds": round(time.perf_counter() - started, 3)})
    vlm.close()
    qwen = {"clip.projector_type": "qwen2vl_merger", "clip.vision.patch_size": 14}
    return {"tiny_vlm": rows, "qwen_vl_image_tokens": {str(p): image_tokens(qwen, p)
                                                       for p in (500_000, 1_000_000, 2_000_000, 4_000_000)}}


def _per_sample(backend: Any, page: PageInput, samples: int = 3, force_full: bool = False) -> dict[str, Any]:
    seconds, prompt_tokens = [], 0
    for attempt in range(samples):
        if force_full:
            backend._prompt = None
        started = time.perf_counter()
        prompt_tokens = backend.execute(page, attempt).prompt_tokens
        seconds.append(round(time.perf_counter() - started, 3))
    return {"prompt_tokens": prompt_tokens, "seconds_per_sample": seconds}


def render_speed(pdf: Path, pages: int) -> dict[str, float]:
    out = {}
    render_page(pdf, 1, 150, 4_000_000)  # warm-up: fonts, file cache
    for dpi in (150, 200):
        started = time.perf_counter()
        for n in range(1, pages + 1):
            render_page(pdf, n, dpi, 4_000_000)
        out[f"{dpi}dpi_pages_per_s"] = round(pages / (time.perf_counter() - started), 2)
    return out


def startup(tmp: Path, tiny: TinyVLM) -> float:
    pdf = many_pages_pdf(tmp / "ten" / "ten.pdf", 10)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--schema", str(SCHEMA), str(pdf), "-o",
                    str(tmp / "startup-out"), "--model", str(tiny.model), "--mmproj", str(tiny.mmproj),
                    "--max-tokens", "1024", "--samples", "1"], check=True, capture_output=True)
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--pages", type=int, default=8)
    args = parser.parse_args()
    model = models.model_path(args.model)
    results: dict[str, Any] = {"model": args.model, "cores": psutil.cpu_count(logical=False) or psutil.cpu_count()}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        pdf = many_pages_pdf(tmp / "in" / "pages.pdf", args.pages)
        results["render"] = render_speed(pdf, args.pages)
        tiny = make_tiny_vlm(tmp / "tiny")
        results["startup_10_pages_tiny_s"] = startup(tmp, tiny)
        results["prefix_reuse"] = prefix_reuse(pdf, model, tiny)
        print("prefix reuse:", results["prefix_reuse"], flush=True)
        results["image_size"] = image_size(pdf, tiny)
        print("image size:", results["image_size"], flush=True)
        results["plain_1x2"] = plain_loop(pdf, model, 2, args.pages)
        results["plain_1x1"] = plain_loop(pdf, model, 1, args.pages)
        results["plain_2x1"] = plain_parallel(pdf, model, 2, args.pages)
        print("plain llama.cpp:", {k: results[k] for k in ("plain_1x2", "plain_1x1", "plain_2x1")}, flush=True)
        runs = {}
        for workers, threads in ((1, 2), (1, 1), (2, 1)):
            runs[f"{workers}x{threads}"] = pipeline_run(pdf, model, workers, threads, tmp / f"out-{workers}x{threads}")
            print(f"pipeline {workers}x{threads}: {runs[f'{workers}x{threads}']}", flush=True)
        results["pipeline"] = runs
    plain = results["plain_1x2"]["pages_per_s"]
    steady_1x2 = runs["1x2"]["steady_pages_per_s"] or runs["1x2"]["pages_per_s"]
    results["overhead_ratio"] = round(steady_1x2 / plain, 3)
    base = runs["1x1"]["steady_pages_per_s"] or runs["1x1"]["pages_per_s"]
    results["scaling_2x1_over_1x1"] = round((runs["2x1"]["steady_pages_per_s"] or 0) / base, 3)
    results["scaling_1x2_over_1x1"] = round(steady_1x2 / base, 3)
    results["plain_scaling_2x1_over_1x1"] = round(results["plain_2x1"]["pages_per_s"]
                                                  / results["plain_1x1"]["pages_per_s"], 3)
    results["pipeline_2x1_over_plain_2x1"] = round((runs["2x1"]["steady_pages_per_s"] or 0)
                                                   / results["plain_2x1"]["pages_per_s"], 3)
    print(json.dumps(results, indent=2))
    print(f"\noverhead ratio (pipeline 1x2 steady / plain llama.cpp 1x2): {results['overhead_ratio']} (target >= 0.95)")
    print(f"scaling 2x1 / 1x1: {results['scaling_2x1_over_1x1']} (target >= 1.85); 1x2 / 1x1: "
          f"{results['scaling_1x2_over_1x1']}; llama.cpp alone 2 processes / 1: "
          f"{results['plain_scaling_2x1_over_1x1']}; pipeline 2x1 / llama.cpp alone 2x1: "
          f"{results['pipeline_2x1_over_plain_2x1']}")
    print(f"prefix reuse (seconds per sample 1, 2, 3): {results['prefix_reuse']}")
    print(f"render: {results['render']}; start-up (10 pages, tiny VLM, incl. Ray): "
          f"{results['startup_10_pages_tiny_s']} s (target < 15)")
    write_results("perf", results)


if __name__ == "__main__":
    main()
