"""Inside one worker: the next page is read while the model works, and the model serves one page at a time."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from pipeline.config.settings import ModelConfig, build_config
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model.base import Backend, Completion, ModelResult, PageInput
from pipeline.run.ray_pool import CONCURRENT_PAGES, actor_pool
from pipeline.run.worker import PageWorker
from pipeline.schema.compiled import load_schema
from pipeline.sources.discover import file_sha256

from .conftest import INVOICE_SCHEMA


class GatedBackend(Backend):
    """The first page's inference waits until the second page has been read: only possible if
    reading overlaps inference.  Records whether two inferences ever ran at once."""

    name, sha256 = "gated", "0" * 64

    def __init__(self, second_read: threading.Event) -> None:
        super().__init__(load_schema(INVOICE_SCHEMA), retries=0, samples=1, dual_view=False)
        self.second_read, self.inside, self.overlapped, self.order = second_read, 0, False, []
        self.guard = threading.Lock()

    def execute(self, page: PageInput, attempt: int) -> Completion:
        raise AssertionError("extract is overridden")

    def extract(self, page: PageInput, enough: Any = None) -> ModelResult:
        with self.guard:
            self.inside += 1
            self.overlapped |= self.inside > 1
        self.order.append(page.source_path)
        if len(self.order) == 1:
            assert self.second_read.wait(timeout=60), "the next page was not read while the model worked"
        with self.guard:
            self.inside -= 1
        return ModelResult("error", None, "gated: no answer", None, 1, 0.0)


def test_next_page_is_read_during_inference_and_inference_is_serial(tmp_path: Path, sample_dir: Path,
                                                                    tiny_vlm: TinyVLM) -> None:
    pdfs = [sample_dir / "invoice-001-classic.pdf", sample_dir / "invoice-002-modern.pdf"]
    cfg = build_config(schema_path=INVOICE_SCHEMA, inputs=tuple(pdfs), output=tmp_path / "out",
                       model=ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, max_tokens=64))
    cfg = cfg.model_copy(update={"chat_handler": "mtmd"})  # as complete() decides for the tiny VLM
    worker = PageWorker(cfg.model_dump_json(), load_schema(INVOICE_SCHEMA).raw, "0" * 64)
    second_read = threading.Event()
    worker.backend = backend = GatedBackend(second_read)
    reading = worker._reading

    def watched(task: dict[str, Any]) -> Any:
        return _then(reading(task), lambda: second_read.set() if task["source_path"] == str(pdfs[1]) else None)

    worker._reading = watched  # type: ignore[method-assign]
    rows: list[dict[str, Any]] = []

    def call(pdf: Path) -> None:
        batch = {"source_path": [str(pdf)], "source_sha256": [file_sha256(pdf)], "page_number": [1],
                 "page_count": [1]}
        rows.append(worker(batch))

    first = threading.Thread(target=call, args=(pdfs[0],))
    first.start()
    while not backend.order:  # the first page is in the model
        threading.Event().wait(0.01)
    second = threading.Thread(target=call, args=(pdfs[1],))
    second.start()
    first.join(timeout=120)
    second.join(timeout=120)
    assert backend.order == [str(pdfs[0]), str(pdfs[1])]
    assert not backend.overlapped
    assert sorted(r["source_path"][0] for r in rows) == sorted(map(str, pdfs))
    assert all(r["error"][0] == "gated: no answer" for r in rows)


class _then:
    """A context manager that runs ``after`` once ``inner`` has been left."""

    def __init__(self, inner: Any, after: Any) -> None:
        self.inner, self.after = inner, after

    def __enter__(self) -> Any:
        return self.inner.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        result = self.inner.__exit__(*exc)
        self.after()
        return result


def test_actors_take_two_pages_at_once() -> None:
    pool, held, _ = actor_pool(2)
    assert pool.max_tasks_in_flight_per_actor == CONCURRENT_PAGES == 2
    assert pool.max_concurrent_calls_per_actor == 2 and pool.enable_true_multi_threading
