"""Stage 3, model: the backend interface (base), llama.cpp backends (llama), context sizing, prompts,
sampling, and the model registry (download cache)."""
