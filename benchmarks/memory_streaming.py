"""Memory must not grow with the number of pages: a 200-page run, RSS sampled as it goes.

Prints the driver's and the workers' resident memory at each quarter of the run and the
growth from the first quarter to the end (bytes per page).  A streaming pipeline shows a
flat line; one that collects results in memory grows with every page.

    python benchmarks/memory_streaming.py --pages 200

Writes ``benchmarks/results/memory_streaming.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil
from _results import write_results

from pipeline.config.settings import ModelConfig, build_config, default_threads
from pipeline.devtools.samples import many_pages_pdf
from pipeline.devtools.tiny_vlm import make_tiny_vlm
from pipeline.run.driver import execute_run
from pipeline.schema.compiled import load_schema

ROOT = Path(__file__).resolve().parents[1]


def worker_rss() -> int:
    total = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "PageWorker" in " ".join(proc.info["cmdline"] or []) or "PageWorker" in (proc.info["name"] or ""):
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tiny = make_tiny_vlm(work / "model")
        pdf = many_pages_pdf(work / "in" / "many.pdf", args.pages)
        model = ModelConfig(path=tiny.model, mmproj=tiny.mmproj, n_threads=default_threads(args.workers),
                            max_tokens=1024, samples=1)
        cfg = build_config(schema_path=ROOT / "schemas" / "invoice.json", inputs=(pdf,), output=work / "out",
                           model=model, workers=args.workers)
        me = psutil.Process()
        samples: list[tuple[int, int, int]] = []  # (pages done, driver rss, worker rss)
        done = [0]
        stop = threading.Event()

        def sampler() -> None:
            while not stop.is_set():
                samples.append((done[0], me.memory_info().rss, worker_rss()))
                time.sleep(0.25)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        started = time.perf_counter()

        def count(row: object, total: int) -> None:
            done[0] += 1

        summary = execute_run(cfg, load_schema(cfg.schema_path), progress=count)
        stop.set()
        thread.join()
        elapsed = time.perf_counter() - started

    mib = 1024 * 1024
    print(f"pages={summary.pages} ok={summary.ok} errors={summary.errors} seconds={elapsed:.1f} "
          f"pages/s={summary.pages / elapsed:.2f}")
    print(f"{'pages done':>10} {'driver MiB':>11} {'workers MiB':>12}")
    marks = [args.pages * q // 4 for q in (1, 2, 3, 4)]
    rows = []
    for mark in marks:
        at = [s for s in samples if s[0] >= mark] or samples[-1:]
        rows.append(at[0])
        print(f"{at[0][0]:>10} {at[0][1] / mib:>11.1f} {at[0][2] / mib:>12.1f}")
    pages = max(1, rows[-1][0] - rows[0][0])
    driver_growth = rows[-1][1] - rows[0][1]
    worker_growth = rows[-1][2] - rows[0][2]
    print(f"growth from {rows[0][0]} to {rows[-1][0]} pages: driver {driver_growth / mib:+.1f} MiB "
          f"({driver_growth / pages / 1024:+.1f} KiB/page), workers {worker_growth / mib:+.1f} MiB "
          f"({worker_growth / pages / 1024:+.1f} KiB/page)")
    write_results("memory_streaming", {
        "pages": summary.pages, "ok": summary.ok, "workers": args.workers, "model": "tiny (generated)",
        "seconds": round(elapsed, 1), "pages_per_s": round(summary.pages / elapsed, 2),
        "rss_mib": [{"pages_done": r[0], "driver": round(r[1] / mib, 1), "workers": round(r[2] / mib, 1)}
                    for r in rows],
        "growth_kib_per_page": {"driver": round(driver_growth / pages / 1024, 1),
                                "workers": round(worker_growth / pages / 1024, 1)}})


if __name__ == "__main__":
    main()
