"""A run on a machine where llama.cpp dies, and runs where nothing succeeds: they fail loudly.

The start-up probe runs the real model in a real child process; its crash is a real signal
(raised in the child after the model loaded, where a build's refused instruction would strike).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config.settings import ModelConfig
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model.probe import FAULT_PROBE_SIGNAL_ENV, crash_message, probe
from pipeline.run.quarantine import STOPPED, SYSTEMIC_PAGES, CrashCounter
from pipeline.sink.dataset import manifests, read_table

from .conftest import INVOICE_SCHEMA


def _cmd(tiny_vlm: TinyVLM, inputs: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--schema", str(INVOICE_SCHEMA), str(inputs), "--output",
            str(out), "--model", str(tiny_vlm.model), "--mmproj", str(tiny_vlm.mmproj), "--workers", "2",
            "--threads", "1", "--samples", "1", "--max-tokens", "256"]


def test_the_probe_runs_the_model_in_a_child(tiny_vlm: TinyVLM) -> None:
    verdict = probe(ModelConfig(path=tiny_vlm.model, n_threads=1))
    assert verdict.ok, verdict.message
    assert "AVX" in verdict.features or "NEON" in verdict.features  # the build's instruction sets, as llama.cpp says


def test_a_probe_that_dies_names_the_signal_and_the_fix(tiny_vlm: TinyVLM, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"  # a path of its own: a model already proven in this process is not probed again
    model.write_bytes(tiny_vlm.model.read_bytes())
    monkeypatch.setenv(FAULT_PROBE_SIGNAL_ENV, "ILL")
    verdict = probe(ModelConfig(path=model, n_threads=1))
    assert not verdict.ok
    assert "SIGILL (illegal instruction)" in verdict.message
    assert "make reinstall-llama" in verdict.message and "extract doctor" in verdict.message
    assert "probe.py" in verdict.message  # where: the innermost Python frame faulthandler saw
    assert "\n" not in verdict.message


def test_crash_messages_for_other_signals() -> None:
    assert "out-of-memory" in crash_message(9, "", "a worker")
    assert "SIGSEGV" in crash_message(11, '  File "/x/llama.py", line 7 in eval\n', "a worker")
    assert "llama.py:7 in eval" in crash_message(11, '  File "/x/llama.py", line 7 in eval\n', "a worker")


def test_a_run_whose_model_dies_stops_before_any_page_and_the_next_run_does_them(
        tiny_vlm: TinyVLM, four_pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.perf_counter()
    crashed = subprocess.run(_cmd(tiny_vlm, four_pages, out), capture_output=True, text=True, timeout=300,
                             env={**os.environ, FAULT_PROBE_SIGNAL_ENV: "ILL"})
    elapsed = time.perf_counter() - started
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    lines = [line for line in crashed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SIGILL" in lines[0] and "make reinstall-llama" in lines[0], crashed.stderr
    assert not list(out.glob("*/run_date=*/*.parquet")), "a page was written although the model cannot run"
    assert not list((out / "_runs").glob("*.json")) if (out / "_runs").exists() else True
    print(f"extract run -> probe verdict (SIGILL): {elapsed:.1f} s")

    fixed = subprocess.run(_cmd(tiny_vlm, four_pages, out), capture_output=True, text=True, timeout=300)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert len(read_table(out, "pages")) == 4  # every page done by the run after the fix
    probe_seen = manifests(out)[-1]["probe"]
    assert probe_seen["seconds"] > 0 and probe_seen["build_features"]


def test_a_run_where_every_input_is_broken_exits_1(tmp_path: Path, tiny_vlm: TinyVLM) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "empty.pdf").write_bytes(b"")
    (inputs / "noise.pdf").write_bytes(os.urandom(4096))
    (inputs / "cut.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(inputs), "--output", str(out),
                                       "--model", str(tiny_vlm.model), "--mmproj", str(tiny_vlm.mmproj)])
    assert result.exit_code == 1, result.output
    assert "status=FAILED" in result.output and "ok=0 errors=3" in result.output
    assert "no page succeeded" in result.output
    assert "extract progress: 3/3 pages" in result.output  # not a terminal: progress as lines (the last one always)
    manifest = manifests(out)[-1]
    assert manifest["status"] == "failed" and manifest["failure"].startswith("no page succeeded")
    assert len(read_table(out, "errors")) == 3  # each with its reason, as always


def test_deaths_on_different_pages_are_systemic_one_page_is_not() -> None:
    poison = CrashCounter(pool_size=2)
    for _ in range(4):  # one page dies again and again: its own fault, quarantined as before
        assert poison.suspect("a") is None
    runtime = CrashCounter(pool_size=2)
    reasons = [runtime.suspect(key) for key in ("a", "b", "a", "c")]
    assert reasons[:3] == [None, None, None]
    assert reasons[3] is not None and f"{SYSTEMIC_PAGES} different pages in a row" in reasons[3]
    healed = CrashCounter(pool_size=2)
    healed.suspect("a")
    healed.suspect("b")
    healed.finished("x")  # a page came back: the model works
    assert healed.suspect("c") is None


def test_workers_dying_while_loading_stop_the_run() -> None:
    counter = CrashCounter(pool_size=2)
    assert counter.birth({}) is None and counter.birth({}) is None  # the pool starts: two load at once
    assert counter.birth({}) is None  # one died loading; its replacement starts
    dump = {"worker-1.log": (1.0, "a worker died of SIGILL (illegal instruction) in llama.py:1 in eval: ...")}
    reason = counter.birth(dump)
    assert reason is not None and "2 workers died while loading the model" in reason and "SIGILL" in reason
    assert STOPPED.strip()


def test_manifest_and_summary_agree_on_status(tmp_path: Path) -> None:
    from pipeline.run.manifest import run_status

    assert run_status(0, 0, 0, None) == ("ok", None)
    assert run_status(4, 0, 4, None)[0] == "failed"
    assert run_status(4, 3, 1, 0.2)[0] == "failed" and run_status(4, 3, 1, 0.25)[0] == "ok"
    assert json.dumps(run_status(4, 4, 0, 0.0)) == '["ok", null]'


def test_the_build_flags_are_the_sets_this_cpu_proves() -> None:
    from pipeline.devtools import cpu

    if not cpu.is_x86() or cpu.compiler() is None:
        pytest.skip("x86 with a C compiler only")
    verdicts = cpu.probe()
    flags = set(Path("/proc/cpuinfo").read_text().split())
    assert verdicts["AVX2"][0] == ("avx2" in flags)  # a set the kernel reports and runs
    args = cpu.cmake_args(verdicts).split()
    assert "-DGGML_NATIVE=OFF" in args and not any("march=native" in a for a in args)
    for option, (ok, _) in verdicts.items():
        assert f"-DGGML_{option}={'ON' if ok else 'OFF'}" in args
    portable = cpu.portable_args()
    assert "-DGGML_AVX2=ON" in portable and "-DGGML_AVX512=OFF" in portable and "-DGGML_AMX_INT8=OFF" in portable


def test_an_instruction_the_cpu_refuses_is_left_out(tmp_path: Path) -> None:
    """ud2 raises SIGILL everywhere: the stand-in for AMX on a VM that does not enable it."""
    from pipeline.devtools import cpu

    cc = cpu.compiler()
    if cc is None or not cpu.is_x86():
        pytest.skip("x86 with a C compiler only")
    refused = cpu.Isa("TRAP", (), "__builtin_trap(); out = x;")
    ok, why = cpu.runs(refused, cc, tmp_path)
    assert not ok and "signal 4" in why


def test_doctor_checks_the_build_and_runs_the_probe(tiny_vlm: TinyVLM) -> None:
    result = CliRunner().invoke(main, ["doctor", "--model", str(tiny_vlm.model), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "build compiled for:" in result.output and "model probe: ok" in result.output
