"""Does a page waiting for the API adjudicator hold the model?  Measured in one run (not a test).

The same run twice, one worker, every page adjudicated (``--adjudicate always``) by a loopback
OpenAI-compatible server that answers after ``--api-delay`` seconds:

* one page at a time per worker (the model waits while its page is with the API);
* two pages at a time (``ray_pool.CONCURRENT_PAGES``, the default): the model works on the next
  page while the previous one waits for the API, and the next page is rendered meanwhile.

The worker is the tiny random-weight VLM (its answers are noise, the adjudicator's are valid),
so this measures the mechanics.  Prints the wall times and their ratio; writes
``benchmarks/results/overlap.json``.

    python benchmarks/overlap.py [--pages 12] [--api-delay 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _results import write_results

from pipeline.config.settings import AdjudicationConfig, ModelConfig, build_config
from pipeline.devtools.samples import many_pages_pdf
from pipeline.devtools.tiny_vlm import make_tiny_vlm
from pipeline.run import driver as runner
from pipeline.run import ray_pool
from pipeline.schema.compiled import load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"
ANSWER: dict[str, Any] = {"invoice_number": "INV-1", "issue_date": "2026-01-02", "due_date": None,
          "seller": {"name": "ACME", "vat_id": None, "address": None},
          "buyer": {"name": "Buyer", "vat_id": None, "address": None}, "currency": "EUR",
          "net_amount": 10.0, "tax_amount": 1.9, "total_amount": 11.9, "line_items": []}


@contextlib.contextmanager
def slow_api(delay: float) -> Iterator[str]:
    """Chat Completions on loopback: every answer is a valid record, ``delay`` seconds late."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay)
            body = json.dumps({
                "id": "c1", "object": "chat.completion", "created": 0, "model": "slow",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": json.dumps(ANSWER)}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def timed_run(pdf: Path, tiny: Any, base_url: str, out: Path, concurrent: int) -> dict[str, Any]:
    ray_pool.CONCURRENT_PAGES = concurrent  # read when the actor pool is built
    model = ModelConfig(path=tiny.model, mmproj=tiny.mmproj, n_threads=1, max_tokens=512, samples=1)
    adjudication = AdjudicationConfig(provider="openai", model="slow", base_url=base_url, when="always",
                                      cache_dir=out.parent / f"cache-{out.name}", send_image=False)
    cfg = build_config(schema_path=SCHEMA, inputs=(pdf,), output=out, model=model, workers=1,
                       adjudication=adjudication)
    started = time.perf_counter()
    summary = runner.execute_run(cfg, load_schema(SCHEMA))
    wall = time.perf_counter() - started
    return {"pages_per_worker_at_once": concurrent, "pages": summary.pages, "wall_s": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--api-delay", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "loopback")
    with tempfile.TemporaryDirectory() as t, slow_api(args.api_delay) as url:
        tmp = Path(t)
        tiny = make_tiny_vlm(tmp / "tiny")
        pdf = many_pages_pdf(tmp / "in" / "pages.pdf", args.pages)
        timed_run(pdf, tiny, url, tmp / "warm-up", 2)  # first Ray start, imports, file cache
        serial = timed_run(pdf, tiny, url, tmp / "serial", 1)
        overlapped = timed_run(pdf, tiny, url, tmp / "overlapped", 2)
    result = {"api_delay_s": args.api_delay, "serial": serial, "overlapped": overlapped,
              "speedup": round(serial["wall_s"] / overlapped["wall_s"], 3)}
    print(json.dumps(result, indent=2))
    print(f"\n{args.pages} pages, every one to an API answering in {args.api_delay} s: one page at a time "
          f"{serial['wall_s']} s, two at a time {overlapped['wall_s']} s -> {result['speedup']}x")
    write_results("overlap", result)


if __name__ == "__main__":
    main()
