"""The README is a front door: short, and every link in it and in docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.M)}


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_bytes()) < 10_000


def test_every_link_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text(encoding="utf-8")):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


RESULTS = ROOT / "benchmarks" / "results"
HAND_KEYS = {"note", "notes", "how", "comment"}  # what a person adds; a script prints its remarks instead


def test_every_figure_file_the_docs_name_exists_and_holds_only_what_a_script_writes() -> None:
    """A figure in the docs names its results file; outside ``history/`` that file is a script's
    output as written: no notes or earlier entries added by hand."""
    import json

    cited = {m for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
             for m in re.findall(r"benchmarks/results/[\w./-]+\.json", doc.read_text(encoding="utf-8"))}
    assert cited and not [c for c in cited if not (ROOT / c).is_file()]

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys(v)}
        return {k for v in value for k in keys(v)} if isinstance(value, list) else set()

    for path in RESULTS.glob("*.json"):
        found = keys(json.loads(path.read_text()))
        assert not found & HAND_KEYS and not [k for k in found if k.startswith("previous")], path.name
