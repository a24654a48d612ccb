"""Reading a GGUF file's header (metadata only, no tensors): architecture, chat template, projector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.errors import ModelError


def gguf_metadata(path: Path, keys: tuple[str, ...], arch_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a few scalar/string metadata values from a GGUF header without loading tensors.

    ``arch_keys`` are named without the architecture prefix (``context_length`` is read as
    ``qwen2.context_length`` for a qwen2 model) and returned under that short name.
    """
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:
        raise ModelError(f"{path} is not a readable GGUF file: {' '.join(str(exc).split())[:200]}") from None

    def value(key: str) -> Any:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    out = {key: value(key) for key in keys}
    arch = value("general.architecture")
    out.update({key: value(f"{arch}.{key}") for key in arch_keys})
    return {k: v for k, v in out.items() if v is not None}
