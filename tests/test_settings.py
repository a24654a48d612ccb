"""Every setting is declared once: its bound holds, with one line and exit 2, on the command line and in a job file."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.config.settings import Settings, flag_of

from .conftest import INVOICE_SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def _constraints(annotation: Any, metadata: list[Any]) -> list[Any]:
    found = list(metadata)
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    for member in members:
        if typing.get_origin(member) is typing.Annotated:
            for extra in typing.get_args(member)[1:]:
                found.extend(getattr(extra, "metadata", [extra]))
    return found


def _is_float(annotation: Any) -> bool:
    return float in (typing.get_args(annotation) or (annotation,))


def out_of_bounds() -> list[tuple[str, object, str]]:
    """(setting, a value just outside one of its bounds, which bound) for every bounded setting."""
    cases = []
    for name, info in Settings.model_fields.items():
        step = 0.5 if _is_float(info.annotation) else 1
        for item in _constraints(info.annotation, list(info.metadata)):
            if isinstance(item, annotated_types.Ge):
                cases.append((name, item.ge - step, f"ge {item.ge}"))
            elif isinstance(item, annotated_types.Gt):
                cases.append((name, item.gt, f"gt {item.gt}"))
            elif isinstance(item, annotated_types.Le):
                cases.append((name, item.le + step, f"le {item.le}"))
            elif isinstance(item, annotated_types.Lt):
                cases.append((name, item.lt, f"lt {item.lt}"))
    return [c for c in cases if c[0] != "inputs"]  # min_length of the inputs: covered below


def _choices() -> list[tuple[str, object, str]]:
    cases = []
    for name, info in Settings.model_fields.items():
        for member in (typing.get_args(info.annotation) or (info.annotation,)):
            if typing.get_origin(member) is typing.Literal:
                cases.append((name, "no-such-choice", "choice"))
    return cases


CASES = out_of_bounds() + _choices()


def test_every_bound_is_covered() -> None:
    bounded = {name for name, _, _ in out_of_bounds()}
    assert {"samples", "dpi", "n_ctx", "max_tokens", "adjudicate_below", "batch_poll_s", "commit_documents",
            "max_page_crashes", "adjudicator_max_output_tokens", "workers", "threads"} <= bounded
    assert len(CASES) > 30


def _one_line(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and lines[0].startswith("Error: ") and "invalid setting " in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("name", "value", "bound"), CASES, ids=[f"{n}-{b}" for n, _, b in CASES])
def test_out_of_bounds_on_the_command_line(name: str, value: object, bound: str, tmp_path: Path) -> None:
    flag = flag_of(name)
    args = ["run", "--schema", str(INVOICE_SCHEMA), str(tmp_path), "-o", str(tmp_path / "out"),
            "--model", str(tmp_path / "m.gguf")]
    if Settings.model_fields[name].annotation is bool:
        pytest.skip("a flag has no value to put out of bounds")
    result = CliRunner().invoke(main, [*args, flag, str(value)])
    _one_line(result, flag)


@pytest.mark.parametrize(("name", "value", "bound"), CASES, ids=[f"{n}-{b}" for n, _, b in CASES])
def test_out_of_bounds_in_a_job_file(name: str, value: object, bound: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACT_JOBS_DIR", str(tmp_path))
    literal = f'"{value}"' if isinstance(value, str) else repr(value)
    (tmp_path / "bad.toml").write_text(f'schema = "{INVOICE_SCHEMA}"\ninputs = ["in"]\noutput = "out"\n'
                                       f'model = "m.gguf"\n{name} = {literal}\n')
    result = CliRunner().invoke(main, ["jobs", "run", "bad"])
    _one_line(result, "bad.toml", name)


def test_a_context_below_512_in_a_job_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACT_JOBS_DIR", str(tmp_path))
    (tmp_path / "small.toml").write_text(f'schema = "{INVOICE_SCHEMA}"\ninputs = ["in"]\noutput = "out"\n'
                                         'model = "m.gguf"\nn_ctx = 100\n')
    line = _one_line(CliRunner().invoke(main, ["jobs", "run", "small"]), "n_ctx", "512")
    assert "small.toml" in line


def test_a_value_of_the_wrong_type_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(tmp_path), "-o",
                                       str(tmp_path / "o"), "--samples", "three"])
    _one_line(result, "--samples", "integer")
    result = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), "-o", str(tmp_path / "o")])
    _one_line(result, "INPUTS")


def test_each_bound_and_default_is_written_once() -> None:
    """grep finds a setting's bound and default once: in Settings, nowhere else in the code."""
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "pipeline").rglob("*.py")}
    settings = ROOT / "pipeline" / "config" / "settings.py"
    for name in ("samples", "max_tokens", "dpi", "commit_documents", "batch_poll_s", "adjudicator_max_output_tokens"):
        declared = re.search(rf"^    {name}: .*?setting\((.*?)(?:help=|$)", sources[settings], re.M | re.S)
        assert declared, name
        bounds = re.findall(r"\b(ge|le|gt)=([\d_.]+)", declared.group(1))
        for kind, number in bounds:
            pattern = re.compile(rf"\b{kind}={re.escape(number)}\b")
            users = [p.name for p, text in sources.items() if pattern.search(text)]
            assert users.count("settings.py") == 1, (name, kind, number, users)
            # the same bound written in any other module is a second declaration
            assert not [p for p, text in sources.items() if p != settings and pattern.search(text)], (name, kind)


def test_help_shows_defaults_and_bounds_from_the_declaration() -> None:
    text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "--samples" in text and "default: 3; 1..9" in text
    assert "--commit-every" in text and "--adjudicator-max-output-tokens" in text
    assert "--name" not in text  # a job-file key only


def test_pydantic_model_as_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.schema.compiled import load_schema

    (tmp_path / "my_invoice.py").write_text(
        "from datetime import date\nfrom pydantic import BaseModel\n\n"
        "class Line(BaseModel):\n    description: str\n    amount: float\n\n"
        "class Invoice(BaseModel):\n    invoice_number: str | None\n    issue_date: date | None\n"
        "    lines: list[Line]\n    total: float | None = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    compiled = load_schema("my_invoice:Invoice")
    assert compiled.path == "my_invoice:Invoice"
    assert not compiled.errors({"invoice_number": "A-1", "issue_date": "2026-01-02",
                                "lines": [{"description": "x", "amount": 1.5}], "total": 1.5})
    assert compiled.errors({"invoice_number": "A-1", "issue_date": "not a date", "lines": []})
    from pipeline.errors import SchemaError

    with pytest.raises(SchemaError, match="cannot import"):
        load_schema("no_such_module_here:Invoice")
    with pytest.raises(SchemaError, match="not a pydantic model"):
        load_schema("my_invoice:date")


def test_a_pydantic_model_on_the_command_line_passes_the_schema_checks(tmp_path: Path, sample_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_models.py").write_text(
        "from pydantic import BaseModel\n\nclass Receipt(BaseModel):\n    shop: str | None\n    total: float | None\n")
    (tmp_path / "in").symlink_to(sample_dir)
    monkeypatch.chdir(tmp_path)  # the user's module is found in the folder they run from
    result = CliRunner().invoke(main, ["run", "--schema", "shop_models:Receipt", "in", "-o", "out",
                                       "--model", "missing.gguf"])
    assert result.exit_code == 2 and "model file not found" in result.output  # the schema itself was accepted
    result = CliRunner().invoke(main, ["run", "--schema", "shop_models:Nope", "in", "-o", "out",
                                       "--model", "missing.gguf"])
    assert result.exit_code == 2 and "not a pydantic model" in result.output
