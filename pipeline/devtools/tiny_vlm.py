"""A tiny random-weight LLaVA-style VLM (llama text GGUF + CLIP mmproj), for tests and the demo.

No real VLM weights can be downloaded on CI machines, yet the multimodal llama.cpp path
(mtmd: image -> CLIP -> projector -> text model -> grammar-constrained JSON) has to run for
real.  This writes a model that exercises every step of that path in milliseconds.  Its
answers are noise; only their *form* (valid, schema-conforming JSON) means anything.

The weights are random except for one deliberate bias: every token embedding carries a
constant in hidden dimension 0, and the output rows of JSON "closing" characters (quote,
brackets, comma, digits) put weight on that dimension.  Random weights alone would make
strings thousands of characters long before a quote happens to win; the bias keeps answers
short while the image and the other dimensions still perturb which token wins.

Metadata keys and tensor names follow llama.cpp's ``tools/mtmd/clip-impl.h`` / ``clip.cpp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>\n"
    "{% if m.content is string %}{{ m.content }}"
    "{% else %}{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}"
    "{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Output-row bias per character: the quote ends strings, the others end numbers and containers.
_BIAS = {'"': 0.8, "}": 0.6, "]": 0.6, ",": 0.6}

TEXT_EMBD = 64
TEXT_FF = 128
TEXT_HEADS = 4
TEXT_LAYERS = 2
VISION_EMBD = 32
VISION_FF = 64
VISION_HEADS = 2
VISION_LAYERS = 2
IMAGE_SIZE = 32
PATCH_SIZE = 8
PROJ_HIDDEN = 64
LAYER_STD = 0.01
OUT_STD = 0.3


@dataclass(frozen=True)
class TinyVLM:
    model: Path
    mmproj: Path


def _vocab() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocab: specials, 256 byte fallbacks, printable ASCII pieces."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]  # UNKNOWN, CONTROL, CONTROL
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(6)  # BYTE
    for code in range(0x20, 0x7F):
        tokens.append("\u2581" if code == 0x20 else chr(code))
        types.append(1)  # NORMAL
    scores = [0.0] * len(tokens)
    return tokens, scores, types


def _write_text_model(path: Path, rng: np.random.Generator) -> None:
    import gguf

    tokens, scores, types = _vocab()
    n_vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("extract-tiny-random-llama")
    w.add_description("Random weights for pipeline tests; outputs are noise.")
    w.add_context_length(8192)
    w.add_embedding_length(TEXT_EMBD)
    w.add_block_count(TEXT_LAYERS)
    w.add_feed_forward_length(TEXT_FF)
    w.add_head_count(TEXT_HEADS)
    w.add_head_count_kv(TEXT_HEADS)
    w.add_rope_dimension_count(TEXT_EMBD // TEXT_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(0)  # ALL_F32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def rnd(*shape: int, std: float = LAYER_STD) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    embd = rnd(n_vocab, TEXT_EMBD)
    embd[:, 0] = 1.0
    out = rnd(n_vocab, TEXT_EMBD, std=OUT_STD)
    out[:, 0] = 0.0
    for ch, bias in _BIAS.items():
        out[tokens.index(ch), 0] = bias
    out[2, 0] = -5.0  # never prefer EOS outside the grammar's own ending
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(TEXT_EMBD, np.float32))
    w.add_tensor("output.weight", out)
    for i in range(TEXT_LAYERS):
        p = f"blk.{i}"
        w.add_tensor(f"{p}.attn_norm.weight", np.ones(TEXT_EMBD, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(f"{p}.{name}.weight", rnd(TEXT_EMBD, TEXT_EMBD))
        w.add_tensor(f"{p}.ffn_norm.weight", np.ones(TEXT_EMBD, np.float32))
        w.add_tensor(f"{p}.ffn_gate.weight", rnd(TEXT_FF, TEXT_EMBD))
        w.add_tensor(f"{p}.ffn_up.weight", rnd(TEXT_FF, TEXT_EMBD))
        w.add_tensor(f"{p}.ffn_down.weight", rnd(TEXT_EMBD, TEXT_FF))
    _finish(w)


def _write_mmproj(path: Path, rng: np.random.Generator) -> None:
    import gguf

    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name("extract-tiny-random-clip")
    w.add_description("Random weights for pipeline tests; outputs are noise.")
    w.add_file_type(0)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.embedding_length", VISION_EMBD)
    w.add_uint32("clip.vision.feed_forward_length", VISION_FF)
    w.add_uint32("clip.vision.block_count", VISION_LAYERS)
    w.add_uint32("clip.vision.projection_dim", TEXT_EMBD)
    w.add_uint32("clip.vision.attention.head_count", VISION_HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    w.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_bool("clip.use_gelu", True)

    def rnd(*shape: int, std: float = LAYER_STD) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    n_pos = (IMAGE_SIZE // PATCH_SIZE) ** 2
    w.add_tensor("v.patch_embd.weight", rnd(VISION_EMBD, 3, PATCH_SIZE, PATCH_SIZE))
    w.add_tensor("v.patch_embd.bias", np.zeros(VISION_EMBD, np.float32))
    w.add_tensor("v.position_embd.weight", rnd(n_pos, VISION_EMBD))
    w.add_tensor("v.pre_ln.weight", np.ones(VISION_EMBD, np.float32))
    w.add_tensor("v.pre_ln.bias", np.zeros(VISION_EMBD, np.float32))
    for i in range(VISION_LAYERS):
        p = f"v.blk.{i}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"{p}.{name}.weight", rnd(VISION_EMBD, VISION_EMBD))
            w.add_tensor(f"{p}.{name}.bias", np.zeros(VISION_EMBD, np.float32))
        for ln in ("ln1", "ln2"):
            w.add_tensor(f"{p}.{ln}.weight", np.ones(VISION_EMBD, np.float32))
            w.add_tensor(f"{p}.{ln}.bias", np.zeros(VISION_EMBD, np.float32))
        w.add_tensor(f"{p}.ffn_up.weight", rnd(VISION_FF, VISION_EMBD))
        w.add_tensor(f"{p}.ffn_up.bias", np.zeros(VISION_FF, np.float32))
        w.add_tensor(f"{p}.ffn_down.weight", rnd(VISION_EMBD, VISION_FF))
        w.add_tensor(f"{p}.ffn_down.bias", np.zeros(VISION_EMBD, np.float32))
    w.add_tensor("mm.0.weight", rnd(PROJ_HIDDEN, VISION_EMBD))
    w.add_tensor("mm.0.bias", np.zeros(PROJ_HIDDEN, np.float32))
    w.add_tensor("mm.2.weight", rnd(TEXT_EMBD, PROJ_HIDDEN))
    w.add_tensor("mm.2.bias", np.zeros(TEXT_EMBD, np.float32))
    _finish(w)


def _finish(w: object) -> None:
    w.write_header_to_file()  # type: ignore[attr-defined]
    w.write_kv_data_to_file()  # type: ignore[attr-defined]
    w.write_tensors_to_file()  # type: ignore[attr-defined]
    w.close()  # type: ignore[attr-defined]


def make_tiny_vlm(directory: Path, seed: int = 0) -> TinyVLM:
    """Write ``tiny-llama.gguf`` and ``tiny-mmproj.gguf`` into ``directory`` (deterministic by seed).

    Files are written under temporary names and renamed so that concurrent test workers never
    load a half-written model.
    """
    directory.mkdir(parents=True, exist_ok=True)
    result = TinyVLM(directory / "tiny-llama.gguf", directory / "tiny-mmproj.gguf")
    rng = np.random.default_rng(seed)
    for target, writer in ((result.model, _write_text_model), (result.mmproj, _write_mmproj)):
        tmp = target.with_suffix(".gguf.tmp")
        writer(tmp, rng)
        tmp.replace(target)
    return result
