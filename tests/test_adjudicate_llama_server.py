"""The OpenAI-compatible adjudicator against a real ``python -m llama_cpp.server`` on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.adjudicate.api import OpenAIAdjudicator
from pipeline.adjudicate.base import AdjudicationRequest
from pipeline.devtools.llama_server import llama_server as serve
from pipeline.model import registry as models
from pipeline.schema.compiled import load_schema

from .conftest import INVOICE_SCHEMA

PAGE = """                                                                     INVOICE
ACME Tools GmbH, Hauptstr. 1, 10115 Berlin                     Invoice No.: RE-2026-0042
VAT: DE123456789                                               Invoice date: 14.04.2026
Bill to: Beta SARL, 3 rue de la Paix, 75002 Paris, VAT FR987654321
Description                     Qty      Unit price        Amount
Cordless drill                    2        100,00 €       200,00 €
                                                 Net      200,00 €
                                                 VAT 19%   38,00 €
                                                 Total    238,00 €"""


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    if models.installed("qwen2.5-coder-0.5b") is None:
        pytest.skip("qwen2.5-coder-0.5b not installed: 'extract models pull qwen2.5-coder-0.5b'")
    with serve(models.model_path("qwen2.5-coder-0.5b"), n_threads=2, n_ctx=4096) as base:
        yield base


@pytest.mark.realmodel
@pytest.mark.slow
def test_a_real_local_server_adjudicates(llama_server: str) -> None:
    schema = load_schema(INVOICE_SCHEMA)
    adjudicator = OpenAIAdjudicator(schema, "qwen2.5-coder-0.5b", base_url=llama_server, send_image=False,
                                    response_format="json_object", max_output_tokens=1024, timeout_s=300)
    candidates = [{"invoice_number": "RE-2026-0042", "total_amount": 238.0},
                  {"invoice_number": "RE-2026-0042", "total_amount": 200.0}]
    result = adjudicator.adjudicate(AdjudicationRequest("p" * 64, b"", PAGE, schema.raw, candidates,
                                                        ["total_amount"], []))
    assert result.calls >= 1 and result.input_tokens > 0 and result.output_tokens > 0
    assert result.cost_usd == 0.0  # no price for a local model
    if result.adjudicated:  # a 0.5B model is allowed to be wrong, not to be invalid
        assert result.record is not None and not schema.errors(result.record)
    else:
        assert result.reason.startswith("invalid_answer")
