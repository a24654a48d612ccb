"""Bad input gets one clear line and exit code 2, before any model or Ray work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM

from .conftest import INVOICE_SCHEMA


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["run", *args])


def _assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def model_args(tiny_vlm: TinyVLM) -> list[str]:
    return ["--model", str(tiny_vlm.model), "--mmproj", str(tiny_vlm.mmproj)]


def test_missing_schema(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    result = _run("--schema", str(tmp_path / "nope.json"), str(sample_dir), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "schema file not found")


def test_schema_not_json(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _run("--schema", str(bad), str(sample_dir), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "not valid JSON")


def test_schema_invalid_json_schema(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object", "properties": {"a": {"type": "strnig"}}}')
    result = _run("--schema", str(bad), str(sample_dir), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "not a valid JSON Schema")


def test_schema_with_unenforceable_keyword(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object", "properties": {"a": {"type": "number", "minimum": 0}}}')
    result = _run("--schema", str(bad), str(sample_dir), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "'minimum'", "$.properties.a")


def test_no_inputs_found(tmp_path: Path, model_args: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing to extract")
    result = _run("--schema", str(INVOICE_SCHEMA), str(empty), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "no PDF, image or e-invoice XML files found")


def test_input_path_missing(tmp_path: Path, model_args: list[str]) -> None:
    result = _run("--schema", str(INVOICE_SCHEMA), str(tmp_path / "missing"), "-o", str(tmp_path / "o"), *model_args)
    _assert_one_line_error(result, "input not found")


def test_missing_model_says_how_to_get_one(tmp_path: Path, sample_dir: Path) -> None:
    result = _run("--schema", str(INVOICE_SCHEMA), str(sample_dir), "-o", str(tmp_path / "o"),
                  "--model", str(tmp_path / "none.gguf"), "--mmproj", str(tmp_path / "none-mmproj.gguf"))
    _assert_one_line_error(result, "model file not found", "extract models make-tiny")


def test_no_model_given(tmp_path: Path, sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXTRACT_MODEL", raising=False)
    result = _run("--schema", str(INVOICE_SCHEMA), str(sample_dir), "-o", str(tmp_path / "o"))
    _assert_one_line_error(result, "no model given", "--model")


def test_model_file_not_gguf(tmp_path: Path, sample_dir: Path, tiny_vlm: TinyVLM) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"definitely not a gguf file" * 10)
    result = _run("--schema", str(INVOICE_SCHEMA), str(sample_dir), "-o", str(tmp_path / "o"),
                  "--model", str(fake), "--mmproj", str(tiny_vlm.mmproj))
    _assert_one_line_error(result, str(fake))


def test_unwritable_output(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = _run("--schema", str(INVOICE_SCHEMA), str(sample_dir), "-o", str(blocker / "sub"), *model_args)
    _assert_one_line_error(result, "cannot write to output folder")


def test_output_is_a_file(tmp_path: Path, sample_dir: Path, model_args: list[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = _run("--schema", str(INVOICE_SCHEMA), str(sample_dir), "-o", str(blocker), *model_args)
    _assert_one_line_error(result, "not a folder")


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "show", "models", "samples"):
        assert command in result.output
    run_help = CliRunner().invoke(main, ["run", "--help"]).output
    for option in ("--schema", "--output", "--model", "--mmproj", "--workers", "--threads", "--dpi",
                   "--limit", "--ray-address", "--n-gpu-layers"):
        assert option in run_help
