"""Crashes, for real: ``kill -9`` of the driver at random moments then a rerun, a page that
kills its worker every time, and a real multi-node Ray cluster on loopback (subprocesses)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.devtools.samples import generate
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.run.worker import FAULT_CRASH_ENV, FAULT_CRASH_SIGNAL_ENV, FAULT_SLOW_READ_ENV, FAULT_START_SIGNAL_ENV
from pipeline.sink.dataset import manifests, read_table
from pipeline.sink.state import StateStore

from .conftest import INVOICE_SCHEMA


@pytest.fixture(scope="module")
def many_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("many")
    generate(folder, seed=5, count=8)  # 8 invoices + a scan, a 2-page one and a PNG: 11 documents, 12 pages
    for truth in folder.glob("*.json"):
        truth.unlink()
    return folder


def _cmd(tiny_vlm: TinyVLM, inputs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "run", "--schema", str(INVOICE_SCHEMA), str(inputs),
            "--output", str(out), "--model", str(tiny_vlm.model), "--mmproj", str(tiny_vlm.mmproj),
            "--workers", "2", "--threads", "1", "--samples", "1", "--max-tokens", "256",
            "--commit-every", "1", *extra]


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _expected_pages(inputs: Path) -> set[tuple[str, int]]:
    import pymupdf

    from pipeline.sources.discover import file_sha256

    pages = set()
    for f in sorted(inputs.iterdir()):
        n = pymupdf.open(f).page_count if f.suffix == ".pdf" else 1
        pages |= {(file_sha256(f), i) for i in range(1, n + 1)}
    return pages


def _check_exactly_once(inputs: Path, out: Path) -> None:
    pages = read_table(out, "pages").to_pylist()
    keys = [(p["source_sha256"], p["page_number"]) for p in pages]
    assert len(keys) == len(set(keys)), "a page was written twice"
    assert set(keys) == _expected_pages(inputs), "a page was lost"
    docs = read_table(out, "documents").to_pylist()
    shas = [d["source_sha256"] for d in docs]
    assert len(shas) == len(set(shas)) == len({k[0] for k in keys})
    assert not list(out.glob("**/.*.tmp-*")), "orphan temporary files"
    for m in manifests(out):  # every finished run's manifest agrees with the rows it left
        assert m["counts"]["ok"] + m["counts"]["error"] == m["counts"]["pages"]
        mine = [p for p in pages if p["run_id"] == m["run_id"]]
        assert len(mine) <= m["counts"]["pages"]
    last = manifests(out)[-1]
    assert sum(last["state"]["documents_done"].values()) == len(docs)


def _first_part(proc: subprocess.Popen[bytes], out: Path, timeout: float = 180) -> bool:
    """Wait until the run has committed its first pages part: a kill after it lands mid-run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(out.glob("pages/run_date=*/*.parquet")):
            return True
        time.sleep(0.05)
    return False


def _kill_trials(tiny_vlm: TinyVLM, inputs: Path, root: Path, trials: int, seed: int) -> list[float]:
    """Each trial kills the driver between its first committed part and its end (slowed reading
    keeps that window seconds wide), then a rerun must leave every page exactly once."""
    rng = random.Random(seed)
    moments = []
    for trial in range(trials):
        out = root / f"trial-{trial}"
        proc = subprocess.Popen(_cmd(tiny_vlm, inputs, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, FAULT_SLOW_READ_ENV: "0.7"})
        assert _first_part(proc, out), f"trial {trial}: the run committed nothing before it ended (rc {proc.poll()})"
        moment = rng.uniform(0.0, 2.0)
        moments.append(round(moment, 2))
        time.sleep(moment)
        assert proc.poll() is None, f"trial {trial}: the run ended before the kill ({moment:.2f}s after its first part)"
        proc.send_signal(signal.SIGKILL)  # kill -9 of the driver only, mid-run
        proc.wait()
        time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # Ray's own processes die with their driver; be sure
        marked = len(StateStore(out).done())  # 0 only if the kill fell between a part's rename and its mark
        rerun = _run(_cmd(tiny_vlm, inputs, out))
        assert rerun.returncode == 0, f"trial {trial} (killed {moment:.2f}s in): {rerun.stderr[-2000:]}"
        _check_exactly_once(inputs, out)
        if marked:  # the rerun did only what the killed run had not committed
            assert manifests(out)[-1]["counts"]["pages"] < len(_expected_pages(inputs))
    return moments


def test_kill_9_then_rerun_two_trials(tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    _kill_trials(tiny_vlm, many_inputs, tmp_path, trials=2, seed=1)


@pytest.mark.slow
def test_kill_9_then_rerun_ten_trials(tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    moments = _kill_trials(tiny_vlm, many_inputs, tmp_path, trials=10, seed=2)
    print("killed at", moments)


def test_a_page_that_kills_its_worker_is_quarantined(tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    victim = next(p for p in sorted(many_inputs.iterdir()) if p.name.startswith("invoice-002"))
    # slow reading: the next page is always being read when the victim kills the worker, and
    # must not be blamed for it (it is a suspect, runs alone and passes)
    done = _run(_cmd(tiny_vlm, many_inputs, out), env={FAULT_CRASH_ENV: victim.name, FAULT_SLOW_READ_ENV: "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    errors = read_table(out, "errors").to_pylist()
    assert [Path(e["source_path"]).name for e in errors] == [victim.name]
    assert "quarantined: the worker died 2 times" in errors[0]["error"]
    _check_exactly_once(many_inputs, out)
    ok = [d for d in read_table(out, "documents").to_pylist() if d["status"] == "ok"]
    assert len(ok) == len(list(many_inputs.iterdir())) - 1  # the restarted workers did all the rest


def _no_rows_written(out: Path) -> None:
    assert not list(out.glob("*/run_date=*/*.parquet")), "pages were written off although the runtime was at fault"


def test_workers_dying_on_every_page_stop_the_run_with_the_pages_left_to_do(
        tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    """A stand-in for a llama.cpp that dies on any page: SIGILL on every page, in every worker."""
    out = tmp_path / "out"
    started = time.perf_counter()
    # every page path contains "/"; the probe passes (the fault strikes in the page workers only)
    crashed = _run(_cmd(tiny_vlm, many_inputs, out), env={FAULT_CRASH_ENV: "/", FAULT_CRASH_SIGNAL_ENV: "ILL"})
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    line = crashed.stderr.strip().splitlines()[-1]
    assert "different pages in a row" in line and "SIGILL" in line and "left to do" in line, crashed.stderr[-2000:]
    _no_rows_written(out)
    print(f"systemic stop after {time.perf_counter() - started:.1f} s")
    fixed = _run(_cmd(tiny_vlm, many_inputs, out))
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    _check_exactly_once(many_inputs, out)


def test_workers_dying_while_loading_stop_the_run(tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    crashed = _run(_cmd(tiny_vlm, many_inputs, out), env={FAULT_START_SIGNAL_ENV: "ILL"}, timeout=180)
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    line = crashed.stderr.strip().splitlines()[-1]
    assert "workers died while loading the model" in line and "SIGILL" in line, crashed.stderr[-2000:]
    _no_rows_written(out)


@pytest.mark.slow
def test_on_a_two_node_ray_cluster(tiny_vlm: TinyVLM, many_inputs: Path, tmp_path: Path) -> None:
    port = str(6000 + os.getpid() % 1000)
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--block", "--disable-usage-stats"]
    ray_bin = str(Path(sys.executable).with_name("ray"))
    auth = {**os.environ, "RAY_AUTH_MODE": "token"}  # Ray >= 2.59: 'ray start' clusters use token auth
    head = subprocess.Popen([ray_bin, "start", "--head", "--port", port, "--include-dashboard", "false",
                             *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=auth)
    node = None
    try:
        time.sleep(8)
        node = subprocess.Popen([ray_bin, "start", "--address", f"127.0.0.1:{port}", *common],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env=auth)
        time.sleep(8)
        out = tmp_path / "out"
        done = _run(_cmd(tiny_vlm, many_inputs, out, "--ray-address", f"127.0.0.1:{port}"),
                    env={"RAY_AUTH_MODE": "token"})
        assert done.returncode == 0, done.stderr[-3000:]
        _check_exactly_once(many_inputs, out)
        assert manifests(out)[-1]["config"]["ray_address"] == f"127.0.0.1:{port}"
    finally:
        for proc in (node, head):
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
