"""Drafted decoding (``--draft-tokens``) against llama.cpp's one token per call, in one run (not a test).

For each model and page (the first page of each PDF in a folder, e.g. ``../shared/realdev/invoices``,
or generated invoice pages): the page's greedy answer decoded one token per model call (plain
llama.cpp with the grammar checked on the chosen token, what ``extract`` does by default on a CPU)
and with drafts checked in batches, both from an empty KV cache; then the page's later samples
(temperature ladder, prompt cached) both ways.  The prompt is timed alone once per page, so the
decode time is the answer's own, and once more after the instruction and schema all pages share
(cached between pages in a run) for the pages/s a run gets.  Checks whether the greedy answers
are identical on every page and, where not, where they part and by how much plain decoding's
logits preferred its choice there (llama.cpp rounds a batch differently from a single step: a
near-tie can go the other way); prints pages/s, decode tokens/s, their ratios and the drafting
counters.  Also times what a batch of k tokens costs against k single steps on this machine,
which bounds any drafting gain.

    python benchmarks/decode.py [DIR] --model qwen2.5-coder-0.5b --model qwen2.5-coder-1.5b \\
        [--pages 8] [--draft 16] [--samples 3] [--threads 1] [--n-gpu-layers -1]

Writes ``benchmarks/results/decode.json``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _results import write_results

from pipeline.config.settings import ModelConfig
from pipeline.devtools.samples import generate
from pipeline.model import registry as models
from pipeline.model.base import PageInput
from pipeline.model.decode import common_prefix
from pipeline.model.llama import LlamaTextBackend
from pipeline.model.sampling import divergence
from pipeline.render.pages import page_text
from pipeline.schema.compiled import load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"


def batch_curve(llm: Any, sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> dict[str, float]:
    """ms per token of a batch of k tokens with logits at every position (a draft check) after 300 tokens."""
    words = llm.tokenize(b"Invoice INV-2024-0012 of 12 March 2024, Acme GmbH, Berlin, total 1.234,56 EUR. " * 40,
                         add_bos=False)
    llm.reset()
    llm.eval(words[:300])
    out = {}
    for k in sizes:
        calls = max(2, 48 // k)
        started = time.perf_counter()
        for i in range(calls):
            llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
            llm._batch.set_batch(batch=words[300 + i * k:300 + (i + 1) * k], n_past=llm.n_tokens, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.n_tokens += k
        out[str(k)] = round((time.perf_counter() - started) * 1000 / (calls * k), 1)
        llm._ctx.kv_cache_seq_rm(-1, 300, -1)
        llm.n_tokens = 300
    llm.reset()
    return out


def answer(backend: LlamaTextBackend, text: str, attempt: int, draft: int) -> tuple[float, Any, dict[str, int]]:
    backend.llm.draft_tokens = draft
    started = time.perf_counter()
    page = PageInput("benchmark", 1, b"", text)
    completion = backend.chat(backend.messages(page), attempt, backend.page_grammar(page))
    seconds = time.perf_counter() - started
    counts = backend.llm.decode_counts
    return seconds, completion, {"calls": counts.calls, "drafted": counts.drafted, "forced": counts.forced,
                                 "accepted": counts.accepted}


def measure(model: str, texts: list[tuple[str, str]], draft: int, samples: int, threads: int,
            gpu_layers: int = 0) -> dict[str, Any]:
    backend = LlamaTextBackend(ModelConfig(path=models.model_path(model), n_threads=threads, max_tokens=1024,
                                           draft_tokens=0, n_gpu_layers=gpu_layers), load_schema(SCHEMA), "benchmark")
    llm = backend.llm
    llm.trace_sampling = True  # to tell a near-tie that rounding decided from a different choice
    curve = batch_curve(llm)
    rows: list[dict[str, Any]] = []
    prompts: list[list[int]] = []
    for name, text in texts:
        row: dict[str, Any] = {"page": name}
        answers, traces = {}, {}
        for mode, k in (("plain", 0), ("drafted", draft)):
            llm.reset()
            llm._answers = ((), [])  # no earlier answers of this page to draft from
            seconds, completion, counts = answer(backend, text, 0, k)
            traces[mode] = llm._sampler.trace
            later = [answer(backend, text, attempt, k) for attempt in range(1, samples)]
            answers[mode] = [completion.text, *(c.text for _, c, _ in later)]
            row[mode] = {"greedy_s": round(seconds, 2), "later_s": round(sum(s for s, _, _ in later), 2),
                         "tokens": completion.completion_tokens,
                         "later_tokens": sum(c.completion_tokens for _, c, _ in later), **counts,
                         "later_accepted": sum(c["accepted"] for _, _, c in later),
                         "later_drafted": sum(c["drafted"] for _, _, c in later)}
            row["prompt_tokens"] = completion.prompt_tokens
        prompt = llm.input_ids[:row["prompt_tokens"]].tolist()
        prompts.append(prompt)
        llm.reset()
        started = time.perf_counter()
        llm.eval(prompt)
        row["prompt_s"] = round(time.perf_counter() - started, 2)
        row["identical"] = answers["plain"][0] == answers["drafted"][0]
        split = divergence(traces["plain"], traces["drafted"])
        if split is not None:  # the answer token where they part, and plain's logit gap between the two choices
            row["diverged_at_token"], row["plain_logit_gap"] = split[0], round(split[1], 3)
        row["later_identical"] = answers["plain"][1:] == answers["drafted"][1:]
        rows.append(row)
        p, d = row["plain"], row["drafted"]
        print(f"  {name[:44]:44} prompt {row['prompt_tokens']:5d} tok {row['prompt_s']:6.1f}s | answer "
              f"{p['tokens']:4d} tok: plain {p['greedy_s']:6.1f}s, drafted {d['greedy_s']:6.1f}s "
              f"({d['calls']} calls, {d['accepted']}/{d['drafted']} drafted kept, {d['forced']} forced) "
              f"{'same' if row['identical'] else 'different'}"
              f"{'' if split is None else f' from token {split[0]}, plain logit gap {split[1]:.3f}'}", flush=True)
    # In a run the instruction and schema stay in each worker's KV cache between pages: time a page's
    # own prompt tokens after the prefix all pages share, for the pages/s a run gets.
    shared = min(common_prefix(prompts[0], p) for p in prompts[1:]) if len(prompts) > 1 else 0
    for row, prompt in zip(rows, prompts, strict=True):
        llm.reset()
        llm.eval(prompt[:shared])
        started = time.perf_counter()
        llm.eval(prompt[shared:])
        row["page_prompt_s"] = round(time.perf_counter() - started, 2)
    backend.close()
    return {"model": model, "draft_tokens": draft, "threads": threads, "n_gpu_layers": gpu_layers, "samples": samples,
            "batch_ms_per_token": curve, "pages": rows, **summary(rows, samples)}


def summary(rows: list[dict[str, Any]], samples: int) -> dict[str, Any]:
    prompt = sum(r["prompt_s"] for r in rows)
    gaps = [r["plain_logit_gap"] for r in rows if "plain_logit_gap" in r]
    out: dict[str, Any] = {"identical_greedy": f"{sum(r['identical'] for r in rows)}/{len(rows)}",
                           "largest_logit_gap_where_different": max(gaps) if gaps else None,
                           "identical_later": f"{sum(r['later_identical'] for r in rows)}/{len(rows)}"}
    for mode in ("plain", "drafted"):
        greedy = sum(r[mode]["greedy_s"] for r in rows)
        decode = greedy - prompt  # the greedy call re-evaluates one prompt token: counted as decode
        tokens = sum(r[mode]["tokens"] for r in rows)
        own = sum(r["page_prompt_s"] for r in rows) + decode  # the instruction cached, as in a run
        out[mode] = {"pages_per_s_1_sample": round(len(rows) / greedy, 4),
                     "pages_per_s_instruction_cached": round(len(rows) / own, 4),
                     f"pages_per_s_{samples}_samples": round(len(rows) / (greedy + sum(r[mode]["later_s"]
                                                                                       for r in rows)), 4),
                     "decode_tokens_per_s": round(tokens / decode, 2) if decode > 0 else None}
    for key in out["plain"]:
        if out["plain"][key] and out["drafted"][key]:
            out.setdefault("ratio", {})[key] = round(out["drafted"][key] / out["plain"][key], 3)
    return out


def pages(folder: Path | None, count: int) -> list[tuple[str, str]]:
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="decode-pages-"))
        generate(folder, seed=11, count=count)
    texts = []
    for pdf in sorted(folder.glob("*.pdf"))[:count]:
        texts.append((pdf.name, page_text(pdf, 1)))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="PDFs (first page of each); default: generated ones")
    parser.add_argument("--model", action="append", help="installed model name (repeatable)")
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--draft", type=int, default=16)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="-1: every layer on the GPU (a CUDA build)")
    parser.add_argument("--results", default="decode", help="name of the results file (benchmarks/results/NAME.json)")
    args = parser.parse_args()
    texts = pages(args.folder, args.pages)
    results = []
    for model in args.model or ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]:
        print(f"{model}: {len(texts)} pages, {args.threads} thread(s), drafts of up to {args.draft}")
        result = measure(model, texts, args.draft, args.samples, args.threads, args.n_gpu_layers)
        print(f"  batch of k, ms per token: {result['batch_ms_per_token']}")
        print(f"  identical greedy answers: {result['identical_greedy']}; plain {result['plain']}; "
              f"drafted {result['drafted']}; ratio {result.get('ratio')}")
        results.append(result)
    write_results(args.results, {"folder": str(args.folder or "generated"), "results": results})


if __name__ == "__main__":
    main()
