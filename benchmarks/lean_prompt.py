"""What a leaner page text would save in prompt tokens (not a test; the tokenizer only, no model run).

The layout text keeps a page's columns with runs of spaces.  For each page of the PDFs in a folder
this counts the prompt tokens of the page text as ``extract`` writes it and of compacted variants
(runs of spaces cut to 2, lines without their indent, columns separated by a tab), with the
model's own tokenizer, and the tokens of the instruction and schema that precede every page (held
in the KV cache between pages, so they cost once per worker).  Prints the table and writes
``benchmarks/results/lean_prompt.json``.

    python benchmarks/lean_prompt.py ../shared/realdev/invoices [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from _results import write_results

from pipeline.model import registry as models
from pipeline.model.preflight import grammar_of
from pipeline.model.prompt import prompt_schema, text_messages
from pipeline.render.pages import page_count, page_text

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.json"

VARIANTS = {
    "as read (layout)": lambda t: t,
    "space runs cut to 2": lambda t: "\n".join(re.sub(r" {3,}", "  ", line) for line in t.splitlines()),
    "cut to 2, no indent": lambda t: "\n".join(re.sub(r" {3,}", "  ", line).strip() for line in t.splitlines()),
    "columns as tabs": lambda t: "\n".join(re.sub(r" {2,}", "\t", line.strip()) for line in t.splitlines()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    args = parser.parse_args()
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(models.model_path(args.model)), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(llm.tokenize(text.encode(), add_bos=False))

    totals = dict.fromkeys(VARIANTS, 0)
    pages = 0
    for pdf in sorted(args.folder.glob("*.pdf")):
        for number in range(1, page_count(pdf) + 1):
            text = page_text(pdf, number)
            pages += 1
            for name, variant in VARIANTS.items():
                totals[name] += count(variant(text))
    answer, _ = grammar_of(json.loads(SCHEMA.read_text()))
    fixed = sum(count(m["content"]) for m in text_messages(prompt_schema(answer), ""))
    base = totals["as read (layout)"]
    rows = {name: {"tokens_per_page": round(n / pages, 1), "saved": round(1 - n / base, 4)}
            for name, n in totals.items()}
    for name, row in rows.items():
        print(f"{name:24} {row['tokens_per_page']:8.1f} tokens/page  saved {row['saved']:6.1%}")
    print(f"instruction + schema: {fixed} tokens (cached between pages)")
    write_results("lean_prompt", {"folder": str(args.folder), "model": args.model, "pages": pages,
                                  "variants": rows, "instruction_and_schema_tokens": fixed})


if __name__ == "__main__":
    main()
