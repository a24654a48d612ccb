"""Every setting of a run, declared once.

``Settings`` is the one declaration of each setting: its name (the job-file key), type, bound,
default, help text and command-line flag.  ``extract run``'s options are generated from it
(``pipeline.cli.options``) and a job file is validated by it, so the two cannot drift: a value
out of bounds is the same one-line error, exit 2, from either.

The nested ``RunConfig`` (``ModelConfig``, ``AdjudicationConfig``) is what the driver and every
Ray worker read: the settings grouped by the code that uses them, with the automatic values
(workers, threads, context size, chat handler) filled in by ``pipeline.run.resolve``.  Its
fields carry no bounds and take their defaults from ``Settings`` by name: nothing is declared twice.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError

MAX_AUTO_WORKERS = 8


def cpu_count() -> int:
    """Cores this process may use (affinity-aware), the budget for llama.cpp threads."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def new_run_id() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def setting(default: Any = ..., *, help: str, flag: str | None = None, short: str | None = None,
            env: str | None = None, cli: bool = True, argument: bool = False, auto: str | None = None,
            alias: str | None = None, **bounds: Any) -> Any:
    """A setting's one declaration: default, bounds (``ge``, ``le``, ``gt``, ``min_length``) and
    what the command line needs (``flag`` when it differs from the name, ``short``, ``env``;
    ``cli=False`` for job-file-only keys; ``auto`` names what an absent value means)."""
    extra: dict[str, Any] = {"flag": flag, "short": short, "env": env, "cli": cli, "argument": argument, "auto": auto}
    return Field(default, description=help, alias=alias, json_schema_extra=extra, **bounds)


ContextTokens = Annotated[int, Field(ge=512)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(_Strict):
    """The settings of ``extract run`` and of a job file (``jobs/NAME.toml``), in help order.

    Relative paths in a job file are relative to the job file's folder, so a job runs the
    same from cron as from a shell.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    inputs: list[str] = setting(argument=True, min_length=1,
                                help="PDF/PNG/JPEG/TIFF files, folders or globs to read.")
    schema_path: str = setting(alias="schema", flag="--schema",
                               help="JSON Schema (2020-12) of one record, e.g. schemas/invoice.json, or a pydantic "
                                    "model as package.module:ClassName.")
    output: Path = setting(short="-o", help="Output root: documents/, pages/, errors/ (Hive-partitioned Parquet), "
                                            "_runs/ manifests, _state/.")
    model: str | None = setting(None, env="EXTRACT_MODEL",
                                help="Model GGUF, or the name of an installed model ('extract models list'); "
                                     "needed to run.")
    mmproj: str | None = setting(None, env="EXTRACT_MMPROJ",
                                 help="Vision projector (mmproj) GGUF of the VLM.")
    backend: Literal["auto", "vlm", "text"] = setting(
        "auto", help="vlm reads page images (needs --mmproj); text reads the text layer, or OCR for scans; "
                     "auto = vlm when --mmproj is given, else text.")
    chat_handler: str = setting("auto", help="Multimodal chat handler: auto (from GGUF metadata), mtmd, "
                                             "llava-1-5, gemma4, ...")
    workers: int | None = setting(None, ge=1, auto="one per core, up to 8; 1 with a GPU",
                                  help="Ray actors, each loading the model once.")
    threads: int | None = setting(None, ge=1, auto="cores / workers", help="llama.cpp threads per worker.")
    dpi: int = setting(150, ge=36, le=600, help="Rendering resolution for PDF pages.")
    ocr_line_orientation: bool = setting(
        True, help="OCR: ask RapidOCR's classifier whether each text line is upside down before reading it "
                   "(off: upright scans only; it also turns some upright lines over, see docs/performance.md).")
    max_pixels: int = setting(4_000_000, ge=10_000,
                              help="Pages whose raster would exceed this many pixels are scaled down "
                                   "(A4 at 200 dpi is ~3.9 M).")
    limit: int | None = setting(None, ge=1, help="Process at most this many pages (whole documents).")
    n_ctx: ContextTokens | Literal["auto"] = setting(
        "auto", help="llama.cpp context length per worker (at least 512); 'auto' sizes it from the schema, "
                     "the page (image tokens or a page of text) and --max-tokens.")
    max_tokens: int = setting(2048, ge=16, help="Longest answer, in tokens.")
    temperature: float = setting(0.0, ge=0.0, le=2.0,
                                 help="Temperature of the first sample (later samples climb a ladder from it).")
    n_gpu_layers: int = setting(0, ge=-1, help="Layers to offload to the GPU; -1 = all (needs a CUDA build).")
    draft_tokens: int | None = setting(
        None, ge=0, le=64, auto="16 with a GPU, 0 on a CPU",
        help="Answer tokens guessed ahead per model call (the grammar's forced text, the page's words) and "
             "checked in one batch: the same answer (up to rounding at a near-tie), in fewer calls. Pays where "
             "a batch costs about a step (GPU).")
    seed: int = setting(0, help="Sampling seed.")
    retries: int = setting(1, ge=0, le=5, help="Extra attempts for a page whose answer is not valid.")
    samples: int = setting(3, ge=1, le=9,
                           help="Answers per page (greedy, then a temperature ladder), voted field by field; "
                                "disagreements are flagged in disputed_fields / needs_review. With --sampling "
                                "adaptive, the most a page gets.")
    sampling: Literal["values", "adaptive", "fixed"] = setting(
        "values", help="values: the greedy answer first; where it leaves a value in doubt (printed nowhere or in "
                       "doubt, read by a broken rule, decisive and unsure), only those values are drawn again, "
                       "from where the answer wrote them, up to --samples times, and voted; adaptive: the other "
                       "--samples whole answers for such a page; fixed: every page gets --samples answers. Each "
                       "page records how many it got and why (samples, sample_reason).")
    greedy_sure: float = setting(
        0.3, gt=0, le=1, help="--sampling values/adaptive: a decisive value (a date, an amount, a code, a field every "
                              "document has) the greedy answer chose with less than this probability (its least "
                              "likely token, before the grammar) draws the page's other samples.")
    read_pages: int = setting(4, ge=1, le=16,
                              help="Text backend: read up to this many pages of a document in one model call (while "
                                   "their text fits), so its header, rows and totals are read together; 1 reads "
                                   "page by page.")
    einvoice: Literal["use", "verify", "ignore"] = setting(
        "use", help="E-invoices (Factur-X / ZUGFeRD attachments, XRechnung / UBL XML): use takes the record from "
                    "valid XML without the model; verify also runs the model and flags every field where the page "
                    "and the XML disagree; ignore reads the pages only.")
    amounts: Literal["printed", "free"] = setting(
        "printed", help="Text backend: printed lets an amount field take only a number printed on the page (or "
                        "null): the model chooses, it cannot compute or misformat one; free lets it write any amount.")
    dual_view: bool = setting(False, help="VLM: also read each page's text layer (or OCR) with the same model "
                                          "and vote that answer with the image samples.")
    adjudicator: Literal["none", "anthropic", "openai"] = setting(
        "none", help="API model for disputed pages, broken rules and failed pages "
                     "(keys from ANTHROPIC_API_KEY / OPENAI_API_KEY).")
    adjudicator_model: str = setting("claude-opus-4-7", help="Adjudicator model name.")
    adjudicator_url: str | None = setting(None, help="Base URL of the adjudicator API (an OpenAI-compatible "
                                                     "server, a proxy).")
    adjudicate: Literal["disputed", "always"] = setting(
        "disputed", help="Which pages go to the adjudicator: the hard ones, or every page (the all-API baseline).")
    adjudicate_below: float = setting(0.6, gt=0, le=1,
                                      help="A field is in doubt when fewer than this share of the samples agree on "
                                           "its value: its page goes to the adjudicator, or without one is flagged "
                                           "needs_review (0.6 with 3 samples: no majority; 1.0: any disagreement).")
    review_below: float = setting(0.0, ge=0, lt=1,
                                  help="Flag a document for review where a value's field_probability (the "
                                       "probability that it is right, fitted on the dev set) is under this; "
                                       "0 (the default): flags come from the doubts and rules alone.")
    adjudicate_mode: Literal["sync", "batch"] = setting(
        "sync", help="sync: call the API page by page; batch: one Anthropic Message Batch after the local pass "
                     "(half price, for nightly jobs).")
    batch_poll_s: float = setting(60.0, gt=0, help="Seconds between checks of a Message Batch.")
    batch_timeout_s: float = setting(24 * 3600.0, gt=0, help="Give up waiting for a Message Batch after this long.")
    budget_usd: float | None = setting(None, ge=0, help="Hard cap on API spending for this run.")
    no_api: bool = setting(False, help="Local only: never call an adjudicator.")
    api_cache: Path | None = setting(None, auto="~/.cache/extract/adjudication",
                                     help="Adjudication response cache (a rerun never pays twice).")
    adjudicator_max_output_tokens: int = setting(4096, ge=256, help="Longest adjudicator answer, in tokens.")
    adjudicator_max_retries: int = setting(3, ge=0, le=10, help="API retries of 429, 5xx and timeouts, with backoff.")
    adjudicator_timeout_s: float = setting(120.0, gt=0, help="Seconds before an API call times out.")
    adjudicator_send_image: bool = setting(True, help="Send the page image to an OpenAI-compatible adjudicator "
                                                      "(off for text-only servers).")
    adjudicator_response_format: Literal["json_schema", "json_object"] = setting(
        "json_schema", help="How an OpenAI-compatible adjudicator is held to the schema.")
    ray_address: str | None = setting(None, auto="$RAY_ADDRESS, else embedded", help="Ray cluster to run on.")
    force: bool = setting(False, help="Redo every document, even those already done with these settings.")
    retry_errors: bool = setting(False, help="Redo documents that ended in error in earlier runs.")
    max_error_rate: float | None = setting(None, ge=0, le=1,
                                           help="Exit with code 1 when more than this share of pages fail (e.g. 0.05).")
    commit_documents: int = setting(32, ge=1, flag="--commit-every",
                                    help="Documents per committed part (a crash redoes at most one part).")
    commit_seconds: float = setting(120.0, gt=0, help="Commit a part at least this often, however few documents.")
    max_page_crashes: int = setting(2, ge=1, le=10,
                                    help="A page that kills its worker this many times becomes an error row.")
    verbose: bool = setting(False, help="Show llama.cpp and Ray logs.")
    name: str | None = setting(None, cli=False, help="The job's name (a job file's stem by default).")


def default_of(name: str) -> Any:
    """A setting's default, for the nested config that groups it (declared in ``Settings`` only)."""
    return Settings.model_fields[name].default


class ModelConfig(_Strict):
    """How each worker loads and runs llama.cpp (resolved: ``n_ctx`` None only before ``resolve``)."""

    path: Path
    mmproj: Path | None = None
    chat_handler: str = default_of("chat_handler")
    n_ctx: int | None = None  # None: sized from the prompt, page and answer (model/context.py)
    n_threads: int = 1
    n_gpu_layers: int = default_of("n_gpu_layers")
    draft_tokens: int = 0  # resolved: 0 on a CPU (run/resolve.py)
    seed: int = default_of("seed")
    max_tokens: int = default_of("max_tokens")
    temperature: float = default_of("temperature")
    retries: int = default_of("retries")
    samples: int = default_of("samples")
    sampling: Literal["values", "adaptive", "fixed"] = default_of("sampling")
    greedy_sure: float = default_of("greedy_sure")
    read_pages: int = default_of("read_pages")
    amounts: Literal["printed", "free"] = default_of("amounts")
    dual_view: bool = default_of("dual_view")
    verbose: bool = default_of("verbose")


class AdjudicationConfig(_Strict):
    """Which API model settles the pages the local model is unsure about, and the spending cap."""

    provider: Literal["none", "anthropic", "openai"] = default_of("adjudicator")
    model: str = default_of("adjudicator_model")
    when: Literal["disputed", "always"] = default_of("adjudicate")
    below: float = default_of("adjudicate_below")
    mode: Literal["sync", "batch"] = default_of("adjudicate_mode")
    batch_poll_s: float = default_of("batch_poll_s")
    batch_timeout_s: float = default_of("batch_timeout_s")
    base_url: str | None = default_of("adjudicator_url")
    budget_usd: float | None = default_of("budget_usd")
    cache_dir: Path | None = None
    send_image: bool = default_of("adjudicator_send_image")
    response_format: Literal["json_schema", "json_object"] = default_of("adjudicator_response_format")
    max_output_tokens: int = default_of("adjudicator_max_output_tokens")
    max_retries: int = default_of("adjudicator_max_retries")
    timeout_s: float = default_of("adjudicator_timeout_s")


class RunConfig(_Strict):
    """Everything that decides what a run reads, how it extracts, and where it writes."""

    schema_path: Path
    inputs: tuple[Path, ...]
    output: Path
    model: ModelConfig
    backend: Literal["vlm", "text"] = "text"
    workers: int = 1
    dpi: int = default_of("dpi")
    max_pixels: int = default_of("max_pixels")
    ocr_line_orientation: bool = default_of("ocr_line_orientation")
    limit: int | None = default_of("limit")
    ray_address: str | None = default_of("ray_address")
    adjudication: AdjudicationConfig = AdjudicationConfig()
    run_id: str = Field(default_factory=new_run_id)
    prompt_version: str = "unresolved"  # resolved: a hash of what the model is given (model/prompt.py)
    job: str | None = None
    force: bool = default_of("force")
    retry_errors: bool = default_of("retry_errors")
    max_error_rate: float | None = default_of("max_error_rate")
    review_below: float = default_of("review_below")
    commit_documents: int = default_of("commit_documents")
    commit_seconds: float = default_of("commit_seconds")
    max_page_crashes: int = default_of("max_page_crashes")
    einvoice: Literal["use", "verify", "ignore"] = default_of("einvoice")
    chat_handler: str | None = None  # resolved: the VLM's multimodal handler (None for the text backend)

    def settings_key(self, schema_sha256: str, model_sha256: str, mmproj_sha256: str | None) -> str:
        """Hash of everything that changes a document's result: a change means redo it.

        Workers, threads, context size, budgets and paths do not change what the model answers;
        the model files, schema, prompt, rendering and sampling settings do.
        """
        m = self.model
        a = self.adjudication
        relevant = {
            "schema": schema_sha256, "model": model_sha256, "mmproj": mmproj_sha256,
            "prompt": self.prompt_version, "backend": self.backend, "dpi": self.dpi,
            "max_pixels": self.max_pixels, "chat_handler": m.chat_handler,
            "seed": m.seed, "max_tokens": m.max_tokens, "temperature": m.temperature, "retries": m.retries,
            "samples": m.samples, "dual_view": m.dual_view, "einvoice": self.einvoice,
            "read_pages": m.read_pages if self.backend == "text" else None,
            "adjudicator": [a.provider, a.model, a.when, a.below] if a.provider != "none" else None,
        }
        if m.sampling != "fixed" and m.samples > 1:  # fixed is how outputs from before the setting were made
            relevant["sampling"] = [m.sampling, m.greedy_sure]
        if not self.ocr_line_orientation:  # on is how outputs from before the setting were made
            relevant["ocr_line_orientation"] = False
        if self.review_below:  # 0 is how outputs from before the setting were made
            relevant["review_below"] = self.review_below
        if self.backend == "text" and m.amounts != "free":  # free is how outputs from before the setting were made
            relevant["amounts"] = m.amounts
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:32]

    @model_validator(mode="before")
    @classmethod
    def _resolve_backend(cls, data: Any) -> Any:
        """'auto': the VLM when an mmproj is given, else the text backend."""
        if isinstance(data, dict) and data.get("backend", "auto") == "auto":
            model = data.get("model")
            mmproj = model.mmproj if isinstance(model, ModelConfig) else (model or {}).get("mmproj")
            data = {**data, "backend": "vlm" if mmproj else "text"}
        return data

    @model_validator(mode="after")
    def _check_inputs(self) -> RunConfig:
        if not self.inputs:
            raise ValueError("at least one input is required")
        if self.model.dual_view and self.backend != "vlm":
            raise ValueError("dual view needs the VLM backend (--mmproj): the text backend has no image view")
        return self


def default_draft(n_gpu_layers: int) -> int:
    """Tokens drafted per model call when ``--draft-tokens`` is not given: 16 with a GPU, none on a CPU.

    Measured on the 2-core CPU (docs/performance.md): one thread evaluates a batch of k tokens in
    about k single steps for k < 16 (the int8 dot products are compute-bound), so a checked draft
    saves little and a wrong one costs a step per token.  On a GPU decoding is bound by reading the
    weights, so a short batch should cost about one step (not measured here: no GPU was lent).
    """
    return 16 if n_gpu_layers != 0 else 0


def default_workers(cores: int | None = None, gpu: bool = False) -> int:
    """Workers when ``--workers`` is not given: one per core (up to 8), or one for a GPU.

    Measured on 2 cores with Qwen2.5-Coder-0.5B (docs/performance.md): 2 workers x 1 thread
    gave 1.56-1.60x the pages/s of 1 worker x 2 threads.  Token generation is memory-bound, so
    independent streams scale better than more threads on one stream, and the weights are
    mmap-shared, so an extra worker costs only its own KV cache and buffers.
    """
    if gpu:
        return 1
    return max(1, min(cores or cpu_count(), MAX_AUTO_WORKERS))


def default_threads(workers: int, cores: int | None = None) -> int:
    """Threads per worker so that workers x threads never exceeds the cores.

    llama.cpp's OpenMP threads busy-wait: oversubscribing cores collapses throughput.
    """
    cores = cores or cpu_count()
    return max(1, cores // max(1, workers))


def expand_inputs(inputs: list[str]) -> tuple[Path, ...]:
    """Globs (``/srv/in/**/*.pdf``) expand here; a glob matching nothing is kept, to be reported."""
    out: list[Path] = []
    for item in inputs:
        if glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            out.extend(Path(m) for m in matches) if matches else out.append(Path(item))
        else:
            out.append(Path(item))
    return tuple(out)


def flag_of(name: str) -> str:
    """The command-line flag of a setting (``samples`` -> ``--samples``)."""
    info = Settings.model_fields[name]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if extra.get("argument"):
        return name.upper()
    return str(extra.get("flag") or "--" + name.replace("_", "-"))


def options(values: dict[str, Any], origin: str = "job") -> Settings:
    """Validate settings from a job file (``origin="job"``: keys) or the command line (flags)
    into ``Settings``; the first problem becomes one line naming the key or flag."""
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "options"
        name = next((n for n, f in Settings.model_fields.items() if f.alias == key), key)  # schema -> schema_path
        if name in Settings.model_fields:
            key = flag_of(name) if origin == "cli" else Settings.model_fields[name].alias or name
        msg = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"invalid setting {key}: {msg}") from None


def build_config(**values: object) -> RunConfig:
    """Validate values into a RunConfig, turning pydantic's report into one line."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
