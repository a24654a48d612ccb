"""Model backends: the interface (``base``) and the llama.cpp VLM backend (``llama_vlm``)."""

from pipeline.model.base import Backend, Completion, ModelResult, PageInput

__all__ = ["Backend", "Completion", "ModelResult", "PageInput"]
