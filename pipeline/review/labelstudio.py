"""Label Studio tasks with the machine's predictions, for teams that already review there.

One task per page (Label Studio labels images): the page picture written beside the tasks, and
per field printed on that page a rectangle (labelled with the field, whatever its row) and its
value as a transcription, both with the field's agreement as the score, in percent of the
picture as Label Studio expects.  ``config.xml`` is the labelling interface the tasks fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from pipeline.errors import OutputError
from pipeline.review.fields import as_json, generic, get_path, record_of, shown
from pipeline.review.picture import PictureError, page_sizes, picture
from pipeline.review.view import OutputView, as_dict


def export(view: OutputView, target: Path, image_prefix: str) -> dict[str, int]:
    """Write ``tasks.json``, ``config.xml`` and ``images/`` under ``target``; counts of what was written."""
    images = target / "images"
    try:
        images.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {target}: {exc.strerror or exc}") from None
    tasks: list[dict[str, Any]] = []
    labels: set[str] = set()
    skipped = 0
    for doc in view.documents():
        key = doc.get("source_sha256")
        if not key:
            skipped += 1
            continue
        try:
            count = len(page_sizes(doc["source_path"], key))
        except PictureError:
            skipped += 1  # the file is gone or changed: nothing to label
            continue
        record = record_of(doc, view.record_names)
        sources = as_dict(doc.get("field_sources"))
        confidence = as_dict(doc.get("field_confidence"))
        for number in range(1, count + 1):
            pic = picture(doc["source_path"], key, number)
            name = f"{key[:16]}-p{number}.png"
            (images / name).write_bytes(pic.png)
            result = []
            for path, source in sorted(sources.items()):
                if not source or source.get("page") != number or not source.get("bbox"):
                    continue
                labels.add(generic(path))
                result.extend(_region(path, source["bbox"], get_path(record, path), pic.width, pic.height,
                                      confidence.get(path)))
            tasks.append({
                "data": {"image": f"{image_prefix}{name}", "source_path": doc["source_path"], "source_sha256": key,
                         "page": number, "record": json.dumps(record, ensure_ascii=False, default=str)},
                "predictions": [{"model_version": f"{doc.get('model_name')} {doc.get('prompt_version')}",
                                 "score": doc.get("agreement") if doc.get("agreement") is not None else 1.0,
                                 "result": result}],
                "meta": {"run_id": doc.get("run_id"), "needs_review": bool(doc.get("needs_review"))},
            })
    (target / "tasks.json").write_text(json.dumps(tasks, indent=1, ensure_ascii=False, default=as_json) + "\n",
                                       encoding="utf-8")
    (target / "config.xml").write_text(_config(sorted(labels)), encoding="utf-8")
    return {"tasks": len(tasks), "documents_skipped": skipped, "labels": len(labels)}


def _region(path: str, bbox: list[float], value: Any, width: float, height: float,
            score: float | None) -> list[dict[str, Any]]:
    box = {"x": 100 * bbox[0] / width, "y": 100 * bbox[1] / height, "width": 100 * (bbox[2] - bbox[0]) / width,
           "height": 100 * (bbox[3] - bbox[1]) / height, "rotation": 0}
    region = path.replace("[", "_").replace("]", "").replace(".", "_")
    common = {"id": region, "to_name": "image", "original_width": round(width), "original_height": round(height),
              "image_rotation": 0, "score": score if score is not None else 1.0}
    return [
        {**common, "from_name": "field", "type": "rectanglelabels",
         "value": {**box, "rectanglelabels": [generic(path)]}},
        {**common, "from_name": "value", "type": "textarea", "value": {**box, "text": [shown(value)]}},
    ]


def _config(labels: list[str]) -> str:
    rows = "\n".join(f"    <Label value={quoteattr(label)}/>" for label in labels)
    return f"""<View>
  <Image name="image" value="$image" zoom="true"/>
  <RectangleLabels name="field" toName="image">
{rows}
  </RectangleLabels>
  <TextArea name="value" toName="image" editable="true" perRegion="true" required="false"/>
</View>
"""
