"""What the loop cut (``model/loops.py``) saves, measured on recorded answers without rerunning them.

Takes the answers a benchmark recorded (``--answers DIR``) and the folder of documents they came
from; for every answer that ran to ``--max-tokens``, finds its page (the page whose text prints
most of the answer's values) and the point where the loop cut would have ended it, checked every
40 characters (about as often as every 16 tokens), and counts the answer tokens it would have saved.
Writes ``benchmarks/results/loops.json``.

    python benchmarks/loops.py ANSWERS_DIR FOLDER
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from _results import write_results

from pipeline.model.loops import loops_past_page
from pipeline.render.pages import RenderError, page_count, page_text

STEP = 40  # characters between checks


def page_texts(folder: Path) -> dict[str, str]:
    texts = {}
    for pdf in sorted(folder.glob("*.pdf")):
        try:
            texts.update({f"{pdf.name} p{n}": page_text(pdf, n) for n in range(1, page_count(pdf) + 1)})
        except RenderError:
            continue
    return texts


def page_of(answer: str, texts: dict[str, str]) -> str:
    """The page whose text prints the most of the answer's first string values."""
    values = [v for v in re.findall(r'"([^"\\]{4,60})"', answer)[:60] if not v.isidentifier()][:20]
    return max(texts, key=lambda name: sum(v in texts[name] for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("answers", type=Path)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    texts = page_texts(args.folder)
    recorded = [json.loads(p.read_text()) for p in sorted(args.answers.glob("*.json"))]
    cut = []
    for answer in recorded:
        if answer.get("finish_reason") != "length":
            continue
        text, page = answer["text"], page_of(answer["text"], texts)
        stop = next((n for n in range(STEP, len(text), STEP) if loops_past_page(text[:n], texts[page])), None)
        tokens = answer["completion_tokens"]
        kept = tokens if stop is None else round(tokens * stop / len(text))
        cut.append({"page": page, "tokens": tokens, "stopped_at_char": stop, "tokens_kept": kept})
        print(f"{page}: {tokens} tokens, cut after {kept}" if stop else f"{page}: {tokens} tokens, not cut")
    total = sum(a["completion_tokens"] for a in recorded)
    saved = sum(c["tokens"] - c["tokens_kept"] for c in cut)
    print(f"{len(recorded)} answers, {total} answer tokens; {len(cut)} ran to max-tokens; the cut saves {saved} "
          f"({saved / max(1, total):.0%})")
    write_results("loops", {"answers": str(args.answers), "folder": str(args.folder), "recorded": len(recorded),
                            "answer_tokens": total, "saved_tokens": saved, "cut": cut})


if __name__ == "__main__":
    main()
