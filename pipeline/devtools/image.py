"""Build the container image with whichever engine is here: ``make image``, and the image test.

Docker or Podman, whichever answers; the base is ``python:3.11-slim-bookworm`` where a registry
serves it, else a Debian bookworm made here with ``debootstrap --variant=minbase`` and imported as
``localhost/debian:bookworm`` (machines with no registry: the build needs only Debian's and
PyPI's package servers). Stdlib only: the Makefile runs this file with the system Python.

    python3 pipeline/devtools/image.py build [--tag extract:latest] [--base IMAGE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_BASE = "docker.io/library/python:3.11-slim-bookworm"
LOCAL_BASE = "localhost/debian:bookworm"
TAG = "localhost/extract:latest"


class ImageError(RuntimeError):
    """The image cannot be built here (no engine, no base); the message says why in one line."""


def engine() -> str | None:
    """podman or docker, the first that answers (a docker client without a daemon does not)."""
    for name in ("podman", "docker"):
        if shutil.which(name) and subprocess.run([name, "info"], capture_output=True, timeout=60).returncode == 0:
            return name
    return None


def _has(tool: str, image: str) -> bool:
    return subprocess.run([tool, "image", "inspect", image], capture_output=True).returncode == 0


def base_image(tool: str, log: bool = True) -> str:
    """A Debian bookworm base: the public Python image if a registry serves it, else one made here."""
    if _has(tool, PUBLIC_BASE) or subprocess.run([tool, "pull", "-q", PUBLIC_BASE], capture_output=True,
                                                   timeout=300).returncode == 0:
        return PUBLIC_BASE
    if _has(tool, LOCAL_BASE):
        return LOCAL_BASE
    if not shutil.which("debootstrap"):
        raise ImageError(f"no registry serves {PUBLIC_BASE} and debootstrap is not installed "
                         "(apt-get install debootstrap) to make a base here")
    if log:
        print(f"no registry serves {PUBLIC_BASE}: making {LOCAL_BASE} with debootstrap (about a minute) ...",
              flush=True)
    with tempfile.TemporaryDirectory(prefix="extract-rootfs-") as rootfs:
        made = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, "http://deb.debian.org/debian"],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise ImageError(f"debootstrap failed: {' '.join(made.stderr.split())[-300:]}")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([tool, "import", "-", LOCAL_BASE], stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imported.returncode != 0:
            raise ImageError(f"{tool} import failed: {imported.stderr.strip()[-300:]}")
    return LOCAL_BASE


def ca_bundle() -> str | None:
    """The CA bundle pip trusts here: passed to the build, so pip inside works behind the same
    TLS-inspecting proxy (an ordinary machine's bundle changes nothing)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"),
                      os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def build(tag: str = TAG, base: str | None = None, llama_cmake_args: str = "") -> tuple[str, float]:
    """Build the image; returns the engine used and the seconds it took."""
    tool = engine()
    if tool is None:
        raise ImageError("neither podman nor docker answers here (install one: apt-get install podman runc)")
    base = base or base_image(tool)
    started = time.perf_counter()
    env_args = ["--build-arg", f"BASE={base}", "--build-arg", f"LLAMA_CMAKE_ARGS={llama_cmake_args}"]
    bundle = ca_bundle()
    if bundle:
        env_args += ["--secret", f"id=cacert,src={bundle}"]
    # the cache mounts need BuildKit: docker's default builder since 23.0, and podman's (buildah) own
    done = subprocess.run([tool, "build", *env_args, "-t", tag, "-f", str(ROOT / "Dockerfile"), str(ROOT)])
    if done.returncode != 0:
        raise ImageError(f"{tool} build failed (exit {done.returncode})")
    return tool, time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="image.py")
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--tag", default=TAG)
    parser.add_argument("--base", default=None, help=f"base image [default: {PUBLIC_BASE}, else {LOCAL_BASE}]")
    parser.add_argument("--llama-cmake-args", default="", help="extra CMake flags, e.g. -DGGML_CUDA=on")
    args = parser.parse_args(argv[1:])
    try:
        tool, seconds = build(args.tag, args.base, args.llama_cmake_args)
    except ImageError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 1
    size = subprocess.run([tool, "image", "inspect", args.tag, "--format", "{{.Size}}"], capture_output=True,
                          text=True).stdout.strip()
    shown = f"{int(size) / 2**20:.0f} MiB" if size.isdigit() else "size unknown"
    print(f"built {args.tag} with {tool} in {seconds:.0f} s ({shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
