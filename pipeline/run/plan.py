"""Planning a run: which files still need doing, and the page tasks they become."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.config.settings import RunConfig
from pipeline.einvoice.documents import Mode, XmlOutcome, check_schema, inspect, xml_pages
from pipeline.render.pages import RenderError, page_count, page_groups
from pipeline.results import PAGES_READ, PageResult
from pipeline.run.resolve import complete
from pipeline.schema.compiled import CompiledSchema
from pipeline.sink.state import Done, source_key
from pipeline.sources.discover import SourceFile, discover, file_sha256


def prepare(cfg: RunConfig, schema: CompiledSchema) -> tuple[RunConfig, list[SourceFile], str, str | None]:
    """Before the output is touched: the input files, the completed config (the model loads, the
    grammar compiles; chat handler and context size decided once) and the model files' hashes."""
    files = discover(cfg.inputs)
    check_schema(schema)
    cfg = complete(cfg, schema)
    model_sha256 = file_sha256(cfg.model.path)
    mmproj_sha256 = file_sha256(cfg.model.mmproj) if cfg.model.mmproj else None
    return cfg, files, model_sha256, mmproj_sha256


def select_work(files: list[SourceFile], done: dict[str, Done], settings: str, force: bool,
                retry_errors: bool) -> tuple[list[SourceFile], dict[str, int]]:
    """Files still to do, and why the others are skipped.

    Done means: same content hash, same result-changing settings, and not an error that the
    user asked to retry.  A second path with the same bytes (a copy) is the same document.
    """
    todo: list[SourceFile] = []
    skipped = {"done": 0, "duplicate": 0, "errors_kept": 0}
    seen: set[str] = set()
    for f in files:
        key = source_key({"source_sha256": f.sha256, "source_path": str(f.path)})
        if key in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(key)
        prior = done.get(key)
        if prior is None or force or prior.work_key != settings:
            todo.append(f)
        elif prior.status == "ok" or not retry_errors:
            skipped["done" if prior.status == "ok" else "errors_kept"] += 1
        else:
            todo.append(f)
    return todo, skipped


@dataclass
class Plan:
    """The run's work: page tasks for the workers, results that need no model (files that cannot
    be opened, e-invoices read from their XML), and each document's e-invoice outcome."""

    tasks: list[dict[str, Any]] = field(default_factory=list)
    ready: list[PageResult] = field(default_factory=list)
    einvoices: dict[tuple[str, str], XmlOutcome] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return sum(int(t[PAGES_READ]) for t in self.tasks) + len(self.ready)


def plan_pages(files: list[SourceFile], limit: int | None, schema: CompiledSchema, einvoice: Mode,
               read_pages: int = 1) -> Plan:
    """What each file becomes.  ``limit`` counts pages but never splits a document: a half-done
    document could not be committed, so the document that reaches the limit is the last one taken.
    With ``read_pages`` above 1 (the text backend), a task is a group of pages read in one request
    (``pages_read`` pages from ``page_number``, ``render.pages.page_groups``).

    With ``einvoice`` ``use``, a document whose XML is valid becomes its XML's record without a
    model call; with ``verify`` its pages go to the model and the assembler compares; an XML that
    is not used says why on every row of its document (``einvoice_error``).
    """
    plan = Plan()
    for f in files:
        if limit is not None and plan.pages >= limit:
            break
        base = {"source_path": str(f.path), "source_sha256": f.sha256}
        try:
            if f.error:
                raise RenderError(f.error)
            count = page_count(f.path)
        except RenderError as exc:
            plan.ready.append(PageResult.failed({**base, "page_number": None, "page_count": None},
                                                f"open_error: {exc}"))
            continue
        tasks = [{**base, "page_number": n, "page_count": count, PAGES_READ: 1} for n in range(1, count + 1)]
        outcome = inspect(f.path, schema) if einvoice != "ignore" else None
        if outcome is not None:
            plan.einvoices[(base["source_path"], base["source_sha256"])] = outcome
        if f.kind == "xml" or (outcome is not None and outcome.record is not None and einvoice == "use"):
            plan.ready.extend(xml_pages(tasks, outcome, einvoice))  # an XML file has no page for a model
        elif read_pages > 1 and count > 1:
            plan.tasks.extend({**base, "page_number": first, "page_count": count, PAGES_READ: span}
                              for first, span in page_groups(f.path, read_pages))
        else:
            plan.tasks.extend(tasks)
    return plan
