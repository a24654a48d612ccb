"""Tokens/s of the llama.cpp build ``make`` installs against the other builds that run here (not a test).

``make`` builds for the instruction sets this machine proves it executes (pipeline/devtools/cpu.py)
instead of ``-march=native``, which compiles in whatever CPUID reports (AMX on VMs that refuse
it). This measures what that costs: the installed build and each candidate (``native``:
GGML_NATIVE=ON, and the same sets untuned) answer the same prompt with the same model and
threads, in rounds that alternate the builds, in one run on one machine. A candidate that dies here (SIGILL) is reported
as such and is not "the fastest build that runs". Candidates are built once per flag set and
kept (~/.cache/extract/llama-wheels/), about 8 minutes each on 2 cores.

    python benchmarks/llama_build.py [--model qwen2.5-coder-1.5b] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _results import provenance, write_results

from pipeline.config.settings import cpu_count
from pipeline.devtools.cpu import build_wheel, cmake_args
from pipeline.model.registry import resolve

CANDIDATES = {"native": "-DGGML_NATIVE=ON"}

# Run in a child per build: a prompt of ~400 tokens evaluated, then 64 greedy tokens decoded.
MEASURE = r"""
import json, sys, time
import llama_cpp
path, threads = sys.argv[1], int(sys.argv[2])
llm = llama_cpp.Llama(path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
prompt = "Invoice INV-2024-0042 from ACME GmbH, Hauptstrasse 5, Berlin. " * 24
tokens = llm.tokenize(prompt.encode())
t0 = time.perf_counter(); llm.eval(tokens); t1 = time.perf_counter()
llm.reset()
t2 = time.perf_counter()
n = 0
for token in llm.generate(tokens[:8], temp=0.0):
    n += 1
    if n == 64:
        break
t3 = time.perf_counter()
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prompt_tokens": len(tokens), "prompt_tps": len(tokens) / (t1 - t0), "gen_tps": n / (t3 - t2),
                  "system_info": info}))
"""


def measure(model: Path, threads: int, target: Path | None) -> dict[str, Any]:
    """One measurement of the build at ``target`` (None: the installed one), or how it died."""
    env = dict(os.environ)
    if target is not None:
        env["PYTHONPATH"] = f"{target}{os.pathsep}{env.get('PYTHONPATH', '')}"
    child = subprocess.run([sys.executable, "-c", MEASURE, str(model), str(threads)], capture_output=True,
                           text=True, env=env, timeout=900)
    if child.returncode != 0:
        how = f"signal {-child.returncode}" if child.returncode < 0 else f"exit {child.returncode}"
        return {"died": how, "stderr": child.stderr[-300:]}
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--version", default="0.3.36", help="llama-cpp-python version of the candidates")
    parser.add_argument("--threads", type=int, default=cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="llama_build")
    args = parser.parse_args()
    model = resolve(args.model)
    assert model is not None and model.is_file(), f"model not found: {args.model}"

    builds: dict[str, Path | None] = {"installed": None}
    # the same sets without -mtune: what tuning is worth
    candidates = {**CANDIDATES, "untuned": " ".join(a for a in cmake_args().split() if "-mtune=" not in a)}
    with tempfile.TemporaryDirectory(prefix="llama-builds-") as tmp:
        for name, flags in candidates.items():
            wheel = build_wheel(sys.executable, args.version, flags)
            if wheel is None:
                print(f"{name}: the build failed")
                continue
            target: Path | None = Path(tmp) / name
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                            str(wheel)], check=True)
            builds[name] = target
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
        for round_ in range(args.rounds):  # alternate the builds: drift in the machine hits them alike
            for name, target in builds.items():
                result = measure(model, args.threads, target)
                runs[name].append(result)
                shown = result.get("died") or (f"prompt {result['prompt_tps']:.1f} tok/s, "
                                               f"gen {result['gen_tps']:.2f} tok/s")
                print(f"round {round_ + 1} {name}: {shown}", flush=True)

    summary: dict[str, Any] = {}
    for name, results in runs.items():
        alive = [r for r in results if "died" not in r]
        if not alive:
            summary[name] = {"runs": False, "died": results[0]["died"]}
            continue
        summary[name] = {"runs": True, "prompt_tps": round(statistics.median(r["prompt_tps"] for r in alive), 2),
                         "gen_tps": round(statistics.median(r["gen_tps"] for r in alive), 3),
                         "system_info": alive[0]["system_info"]}
    running = {n: s for n, s in summary.items() if s["runs"]}
    fastest = max(running, key=lambda n: running[n]["gen_tps"])
    installed = summary["installed"]
    ratios = {"gen": round(installed["gen_tps"] / running[fastest]["gen_tps"], 3),
              "prompt": round(installed["prompt_tps"] / max(s["prompt_tps"] for s in running.values()), 3)}
    print(f"fastest build that runs here: {fastest}; installed / fastest: generation {ratios['gen']:.3f}, "
          f"prompt {ratios['prompt']:.3f}")
    write_results(args.name, {
        **provenance(),
        "model": model.name, "threads": args.threads, "rounds": args.rounds, "llama_cpp_python": args.version,
        "installed_cmake_args": cmake_args(), "candidates": candidates, "builds": summary,
        "fastest_that_runs": fastest, "installed_over_fastest": ratios})


if __name__ == "__main__":
    main()
