"""Drafted decoding (``--draft-tokens``): the same answers in fewer model calls (real llama.cpp).

The tiny random-weight model writes noise, which is the hard case: its choices are nothing like
the drafts' guesses, so every rejection and KV rollback path runs; the 0.5B shows the same on
a real model, where most drafts are kept.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pipeline.cli import main
from pipeline.config.settings import ModelConfig
from pipeline.devtools.tiny_vlm import TinyVLM
from pipeline.model import registry as models
from pipeline.model.base import Completion, PageInput
from pipeline.model.decode import Lookup, Probe
from pipeline.model.llama import LlamaTextBackend, LlamaVLMBackend
from pipeline.model.preflight import preflight
from pipeline.model.sampling import divergence
from pipeline.schema.compiled import compile_schema, load_schema
from pipeline.sink.dataset import read_table

from .conftest import INVOICE_SCHEMA
from .test_printed import PAGE


def _text_backend(path: Path, draft: int, **extra: object) -> LlamaTextBackend:
    cfg = ModelConfig(path=path, n_ctx=8192, max_tokens=400, retries=0, draft_tokens=draft, **extra)  # type: ignore[arg-type]
    return LlamaTextBackend(cfg, compile_schema(json.loads(INVOICE_SCHEMA.read_text())), "0" * 64)


def test_lookup_drafts_what_followed_the_same_tokens() -> None:
    seen = Lookup()
    seen.add([1, 2, 3, 4, 5, 6, 7])
    seen.add([9, 2, 3, 4, 8, 8])  # a later occurrence is the nearer context: it wins
    assert seen.follow([0, 2, 3, 4], 3) == [8, 8]
    assert seen.follow([5, 6, 7], 2) == []  # nothing followed it yet
    assert seen.follow([4, 5, 6], 2) == [7]
    assert seen.follow([6, 2], 4) == []  # two tokens are too short a match to draft from


def test_the_grammar_forces_keys_and_punctuation(tiny_vlm: TinyVLM) -> None:
    import llama_cpp

    backend = _text_backend(tiny_vlm.model, 16)
    try:
        probe = Probe(backend.llm)
        gbnf = r'''root ::= "{" space "\"invoice_number\"" space ":" space ("null" | "\"" [A-Z0-9]+ "\"") space "}"
space ::= " "?'''
        grammar = llama_cpp.llama_sampler_init_grammar(backend.llm._model.vocab, gbnf.encode(), b"root")
        try:
            # the optional space: as the writer last spaced the same character, else JSON's usual way;
            # after ':' a value may start with '"', 'n' or the space: nothing is forced there
            assert probe.forced_text(grammar, "", "", 64) == '{"invoice_number":'
            assert probe.forced_text(grammar, "", '{ "a": 1}', 64) == '{ "invoice_number":'
            for char in '{"invoice_number": n':
                llama_cpp.llama_sampler_accept(grammar, probe.token_of[char])
            assert probe.forced_text(grammar, "", "", 64) == "ull}"  # the rest of the literal, and the end
            ids = backend.llm.tokenize(b'ull}', add_bos=False)
            assert probe.valid_prefix(grammar, ids) == len(ids)
            assert probe.valid_prefix(grammar, backend.llm.tokenize(b"ULL", add_bos=False)) == 0
        finally:
            llama_cpp.llama_sampler_free(grammar)
    finally:
        backend.close()


NEAR_TIE = 0.5  # logits: llama.cpp rounds a batch differently from a single step by up to ~0.2 on these models


def _same_or_near_tie(plain: Completion, plain_trace: list, drafted: Completion, drafted_trace: list) -> None:
    """The drafted answer is the plain one, or they part only where plain decoding itself was at a near-tie."""
    if drafted.text != plain.text:
        split = divergence(plain_trace, drafted_trace)
        assert split is not None and split[1] < NEAR_TIE, (split, plain.text, drafted.text)


def _traced(backend: LlamaTextBackend, page: PageInput, attempt: int = 0) -> tuple[Completion, list]:
    backend.llm.trace_sampling = True
    completion = backend.execute(page, attempt)
    return completion, backend.llm._sampler.trace


def test_drafted_greedy_answers_equal_plain_ones_with_fewer_calls(tiny_vlm: TinyVLM) -> None:
    page = PageInput("x.pdf", 1, b"", PAGE)
    answers: dict[int, list[tuple[Completion, list]]] = {}
    for draft in (0, 16):
        backend = _text_backend(tiny_vlm.model, draft)
        try:
            answers[draft] = [_traced(backend, page) for _ in range(2)]  # the second: the prompt cached
            later = backend.execute(page, 1)  # a temperature sample drafts from the page's earlier answers too
            assert later.completion_tokens > 0 and (later.accepted_tokens > 0 or not draft)
        finally:
            backend.close()
    plain, drafted = [a for a, _ in answers[0]], [a for a, _ in answers[16]]
    for (p, p_trace), (d, d_trace) in zip(answers[0], answers[16], strict=True):
        _same_or_near_tie(p, p_trace, d, d_trace)
    assert plain[0].decode_calls == 0 and plain[0].drafted_tokens == 0  # one token per call: not counted
    first = drafted[0]
    assert first.drafted_tokens > 0 and first.forced_tokens > 0 and 0 < first.accepted_tokens <= first.drafted_tokens
    # each call after the prompt's adds one token and the drafts it kept (one less where max_tokens cut the answer)
    assert first.completion_tokens - 1 <= first.decode_calls + first.accepted_tokens <= first.completion_tokens


def test_the_vlm_decodes_the_same_with_drafts(tiny_vlm: TinyVLM) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (96, 128), "white").save(buf, format="PNG")
    page = PageInput("a.png", 1, buf.getvalue(), "")
    greedy = {}
    for draft in (0, 16):
        cfg = ModelConfig(path=tiny_vlm.model, mmproj=tiny_vlm.mmproj, n_ctx=4096, max_tokens=256, seed=7,
                          draft_tokens=draft)
        compiled = load_schema(INVOICE_SCHEMA)
        backend = LlamaVLMBackend(cfg, compiled, "0" * 64, preflight(cfg, compiled))
        backend.llm.trace_sampling = True
        try:
            greedy[draft] = (backend.execute(page, 0), backend.llm._sampler.trace)
            later = backend.execute(page, 1)  # continues from the evaluated image prompt, drafting too
            assert later.completion_tokens > 0 and (later.accepted_tokens > 0 or not draft)
        finally:
            backend.close()
    (plain, plain_trace), (drafted, drafted_trace) = greedy[0], greedy[16]
    assert drafted.accepted_tokens > 0
    _same_or_near_tie(plain, plain_trace, drafted, drafted_trace)


def test_a_run_records_the_drafting_in_the_pages_table(tiny_vlm: TinyVLM, four_pages: Path, tmp_path: Path,
                                                       ray_local: None) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--schema", str(INVOICE_SCHEMA), str(four_pages), "--output", str(out), "--model",
        str(tiny_vlm.model), "--backend", "text", "--workers", "1", "--threads", "1", "--samples", "1",
        "--max-tokens", "256", "--draft-tokens", "8"])
    assert result.exit_code == 0, result.output
    pages = read_table(out, "pages").to_pylist()
    assert pages and all(p["status"] == "ok" for p in pages)
    read = [p for p in pages if p["completion_tokens"]]
    assert read and all(0 < p["accepted_tokens"] <= p["drafted_tokens"] for p in read)
    assert all(p["completion_tokens"] - p["attempts"] <= p["decode_calls"] + p["accepted_tokens"]
               <= p["completion_tokens"] for p in read)
    bad = CliRunner().invoke(main, ["run", "--schema", str(INVOICE_SCHEMA), str(four_pages), "--output", str(out),
                                    "--model", str(tiny_vlm.model), "--draft-tokens", "65"])
    assert bad.exit_code == 2 and "draft" in bad.output and "Traceback" not in bad.output


@pytest.mark.realmodel
def test_a_real_model_answers_the_same_with_drafts(sample_dir: Path) -> None:
    if models.installed("qwen2.5-coder-0.5b") is None:
        pytest.skip("qwen2.5-coder-0.5b is not installed")
    from pipeline.render.pages import page_text

    pdfs = sorted(sample_dir.glob("*.pdf"))[:2]
    texts = [PAGE, *(page_text(pdf, 1) for pdf in pdfs)]
    answers = {}
    for draft in (0, 16):
        backend = _text_backend(models.model_path("qwen2.5-coder-0.5b"), draft)
        try:
            answers[draft] = [_traced(backend, PageInput("x.pdf", 1, b"", text)) for text in texts]
        finally:
            backend.close()
    for (p, p_trace), (d, d_trace) in zip(answers[0], answers[16], strict=True):
        _same_or_near_tie(p, p_trace, d, d_trace)
    drafted = [a for a, _ in answers[16]]
    assert sum(a.accepted_tokens for a in drafted) > sum(a.completion_tokens for a in drafted) / 3
    assert sum(a.decode_calls for a in drafted) < sum(a.completion_tokens for a in drafted) * 2 / 3


def test_a_looping_answer_ends_with_end_of_text_where_it_repeats_past_the_page(tiny_vlm: TinyVLM) -> None:
    """The guard around every generation (real llama.cpp tokens): a row written more often than the
    page prints it ends the answer there, with end-of-text, and the call's counts say why."""
    from pipeline.model.decode import DecodeCounts

    backend = _text_backend(tiny_vlm.model, 16)
    llm = backend.llm
    page = "Hosting Standard 3,89 EUR\nHosting Quality 5,39 EUR\n"
    row = '{"description": "Hosting Standard", "amount": "3,89"}, '
    answer = llm.tokenize(('{"line_items": [' + row * 12).encode(), add_bos=False, special=False)
    prompt = llm.tokenize(page.encode(), add_bos=False, special=False)
    counts = DecodeCounts()
    out = list(llm._guarded(iter(answer), prompt, counts))
    assert counts.looped and out[-1] == llm.token_eos() and len(out) < len(answer)
    written = llm.detokenize(out[:-1]).decode()
    assert written.count("Hosting Standard") >= 2  # the page prints it once; stopped at the second check past it
    calm = llm.tokenize(('{"line_items": [' + row).encode(), add_bos=False, special=False)
    counts = DecodeCounts()
    assert list(llm._guarded(iter(calm), prompt, counts)) == calm and not counts.looped
    backend.close()
