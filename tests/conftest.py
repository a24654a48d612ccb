"""Shared fixtures: real parts only (tiny random-weight VLM, generated PDFs, a local Ray)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from pipeline.devtools.samples import generate
from pipeline.devtools.tiny_vlm import TinyVLM, make_tiny_vlm

ROOT = Path(__file__).resolve().parents[1]
INVOICE_SCHEMA = ROOT / "schemas" / "invoice.json"

# CI is derandomized (the same examples every run: a red build means a change broke something);
# HYPOTHESIS_PROFILE=explore searches fresh examples, to be run by hand now and then.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# In CI (CI=true) these tests must run: a skip (no model, no browser, no container engine) would
# turn green what was never tested, so it is reported as a failure there.
MUST_RUN_IN_CI = ("realmodel", "browser", "image")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    marks = [m for m in MUST_RUN_IN_CI if item.get_closest_marker(m)]
    if report.skipped and marks and os.environ.get("CI", "").lower() == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: a test marked {'/'.join(marks)} must run here, not skip ({reason})"


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> TinyVLM:
    return make_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("samples")
    generate(directory, seed=11, count=3)
    return directory


@pytest.fixture()
def four_pages(tmp_path: Path, sample_dir: Path) -> Path:
    """Three single-page PDF invoices and a PNG, in a folder of their own."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("invoice-001-classic.pdf", "invoice-002-modern.pdf", "invoice-003-compact.pdf", "photo-001.png"):
        shutil.copy(sample_dir / name, inputs / name)
    return inputs


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One embedded Ray for the whole session (starting Ray costs seconds)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


from .fake_anthropic import anthropic_server  # noqa: E402,F401  (fixture shared by the adjudication tests)
