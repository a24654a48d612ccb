"""The start-up probe: load the model and run one short completion in a child process.

A llama.cpp built for instructions the machine refuses (AMX reported by CPUID, not enabled by the
hypervisor) kills its process with SIGILL on the first matrix product. In a Ray worker that looks
like a poison page, every page over; in the driver it would take the run with it. So before the
first page the driver loads the model in a child: a crash there costs one line on stderr, exit
code 3 and nothing written, and the next run, once the build is fixed, does the same pages.
``extract doctor`` runs the same probe on demand.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from pipeline.config.settings import ModelConfig
from pipeline.errors import RuntimeCrash

PROBE_TIMEOUT_S = 600
FAULT_PROBE_SIGNAL_ENV = "EXTRACT_FAULT_PROBE_SIGNAL"  # test aid: the probe child raises this signal (e.g. ILL)
REINSTALL = "make reinstall-llama (or: python3 pipeline/devtools/cpu.py install .venv/bin/python VERSION)"


@dataclass(frozen=True)
class ProbeVerdict:
    """What the child did: ran (with the build's CPU features) or died (signal, where)."""

    ok: bool
    seconds: float
    features: str = ""
    message: str = ""


_PASSED: dict[tuple[Any, ...], ProbeVerdict] = {}


def _key(cfg: ModelConfig) -> tuple[Any, ...]:
    stat = cfg.path.stat()
    return (str(cfg.path.resolve()), stat.st_size, stat.st_mtime_ns, cfg.n_gpu_layers, cfg.n_threads)


def probe(cfg: ModelConfig, timeout_s: float = PROBE_TIMEOUT_S) -> ProbeVerdict:
    """Run the child; a model already proven in this process is not probed again."""
    key = _key(cfg)
    if key in _PASSED:
        return _PASSED[key]
    started = time.perf_counter()
    request = {"path": str(cfg.path), "n_threads": cfg.n_threads, "n_gpu_layers": cfg.n_gpu_layers}
    try:
        child = subprocess.run([sys.executable, "-m", "pipeline.model.probe", json.dumps(request)],
                               capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ProbeVerdict(False, round(time.perf_counter() - started, 2),
                            message=f"the model probe did not answer within {timeout_s:.0f} s "
                                    f"(loading {cfg.path.name} and writing 4 tokens)")
    seconds = round(time.perf_counter() - started, 2)
    if child.returncode == 0:
        answer = json.loads(child.stdout.strip().splitlines()[-1])
        verdict = ProbeVerdict(True, seconds, features=answer["features"])
        _PASSED[key] = verdict
        return verdict
    if child.returncode < 0:
        return ProbeVerdict(False, seconds, message=crash_message(-child.returncode, child.stderr, "the model probe"))
    last = [line for line in child.stderr.splitlines() if line.strip()][-1:] or [f"exit code {child.returncode}"]
    return ProbeVerdict(False, seconds, message=f"the model probe failed: {last[0].strip()[:300]}")


def check_model_runs(cfg: ModelConfig) -> ProbeVerdict:
    """The driver's gate: a probe that did not pass stops the run before any page (exit code 3)."""
    verdict = probe(cfg)
    if not verdict.ok:
        raise RuntimeCrash(verdict.message)
    return verdict


def crash_message(signum: int, stack: str, who: str) -> str:
    """One line: which signal killed ``who``, where (the innermost frame faulthandler printed), what to do."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    where = innermost_frame(stack)
    at = f" in {where}" if where else ""
    if signum == signal.SIGILL:
        return (f"{who} died of {name} (illegal instruction){at}: this llama.cpp build uses an instruction set "
                f"this CPU or its hypervisor refuses (build: {build_features() or 'unknown'}); "
                f"'extract doctor' shows which ones run here; rebuild for this machine: {REINSTALL}")
    if signum == signal.SIGKILL:
        return f"{who} was killed ({name}){at}: most often the kernel's out-of-memory killer; use a smaller model, " \
               "fewer workers or a smaller --n-ctx"
    return f"{who} died of {name}{at}: llama.cpp crashed; run 'extract doctor' and try --verbose for its log"


# faulthandler's first line ("Fatal Python error: Illegal instruction") -> the signal
_FATAL = {"Illegal instruction": signal.SIGILL, "Segmentation fault": signal.SIGSEGV, "Aborted": signal.SIGABRT,
          "Bus error": signal.SIGBUS, "Floating-point exception": signal.SIGFPE}


def describe_dump(text: str) -> str:
    """One line from a worker's faulthandler dump: the signal, where, what to do."""
    for fatal, signum in _FATAL.items():
        if f"Fatal Python error: {fatal}" in text:
            return crash_message(signum, text, "a worker")
    first = text.strip().splitlines()[0] if text.strip() else "no dump"
    return f"a worker died: {first[:200]}"


def innermost_frame(stack: str) -> str:
    """'llama.py:1234 in eval' from a faulthandler dump (the most recent call comes first; with
    several threads, the one that crashed is marked 'Current thread')."""
    current = stack.find("Current thread")
    if current >= 0:
        stack = stack[current:]
    for line in stack.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            path, _, rest = line[len('File "'):].partition('"')
            number = rest.split("line", 1)[-1].split()[0] if "line" in rest else "?"
            func = rest.rsplit(" in ", 1)[-1] if " in " in rest else "?"
            return f"{os.path.basename(path)}:{number} in {func}"
    return ""


def build_features() -> str:
    """The instruction sets this llama.cpp build was compiled with ('AVX2 FMA F16C AVX512 ...')."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode(errors="replace")
    except Exception:  # a broken install: the caller reports the crash itself
        return ""
    # "CPU : SSE3 = 1 | AVX = 1 | ..." (a backend's name before " : " starts its first item)
    items = [item.rsplit(" : ", 1)[-1].strip() for item in info.split("|")]
    on = [item.split("=")[0].strip() for item in items if item.endswith("= 1")]
    return " ".join(dict.fromkeys(on))


def _child(request: dict[str, Any]) -> None:
    """In the child: load, write 4 tokens, print the build's features. A crash here is the verdict."""
    faulthandler.enable(file=sys.stderr, all_threads=False)
    import llama_cpp

    # stderr is not silenced: a crash while loading (weights are repacked with the build's
    # instructions) must leave its faulthandler dump for the parent to read.
    llm = llama_cpp.Llama(request["path"], n_ctx=256, n_threads=request["n_threads"],
                          n_gpu_layers=request["n_gpu_layers"], verbose=False)
    fault = os.environ.get(FAULT_PROBE_SIGNAL_ENV)
    if fault:
        signal.raise_signal(signal.Signals[f"SIG{fault}"])
    llm("Invoice number:", max_tokens=4, temperature=0.0)
    llm.close()
    print(json.dumps({"features": build_features()}), flush=True)


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
