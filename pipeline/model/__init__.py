"""Model backends: the interface (``base``) and the llama.cpp backends (``llama``: VLM and text)."""

from pipeline.model.base import Backend, Completion, ModelResult, PageInput

__all__ = ["Backend", "Completion", "ModelResult", "PageInput"]
