# CPU image. For CUDA, start from an nvidia/cuda devel image and set
# CMAKE_ARGS="-DGGML_CUDA=on" before installing.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[samples]"
ENTRYPOINT ["extract"]
CMD ["--help"]
