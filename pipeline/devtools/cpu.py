"""Which x86 instruction sets this machine really runs, and the llama.cpp build flags that follow.

CPUID (and so /proc/cpuinfo and ``-march=native``) says what the chip has, not what the OS or the
hypervisor lets a process execute: on cloud VMs that report AMX without enabling its tile state, a
native llama.cpp build dies with SIGILL on its first matrix product. So each instruction set is
proven by running one of its instructions in a child process, and only the proven ones are
compiled in. Stdlib only: the Makefile runs this file before anything is installed.

    python3 pipeline/devtools/cpu.py cmake-args     # -DGGML_NATIVE=OFF -DGGML_AVX2=ON ...
    python3 pipeline/devtools/cpu.py report         # one line per instruction set
    python3 pipeline/devtools/cpu.py install .venv/bin/python 0.3.36   # build (once per flag set) and install
    python3 pipeline/devtools/cpu.py install /venv/bin/python 0.3.36 --portable   # x86-64-v3, for an image

pip's wheel cache keys a built wheel by its source, not by the flags it was built with, so a
cache shared between an AVX-512 machine and an AVX2 one would hand the second a wheel that dies.
``install`` keeps its own wheels under ~/.cache/extract/llama-wheels/<version>-<flags hash>/.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Isa:
    """One ggml build option, the gcc flags it compiles with, and a C body that executes it."""

    option: str  # GGML_<option>
    gcc_flags: tuple[str, ...]
    body: str  # C statements; `x` is a runtime int, the result goes to `out`
    needs: tuple[str, ...] = ()  # options that must also be on (ggml's own implications)


# Each body uses an intrinsic of its set on values the compiler cannot fold (argc), so the
# instruction is really executed. ggml's GGML_AVX512 compiles with F, CD, VL, DQ and BW.
ISAS: tuple[Isa, ...] = (
    Isa("SSE42", ("-msse4.2",), "out = (int)_mm_crc32_u32((unsigned)x, 7u);"),
    Isa("AVX", ("-mavx",), "__m256 a = _mm256_set1_ps((float)x); a = _mm256_add_ps(a, a);"
        "out = (int)_mm256_cvtss_f32(a);"),
    Isa("AVX2", ("-mavx2",), "__m256i a = _mm256_set1_epi32(x); a = _mm256_add_epi32(a, a);"
        "out = _mm256_extract_epi32(a, 0);", ("AVX",)),
    Isa("FMA", ("-mfma",), "__m256 a = _mm256_set1_ps((float)x); a = _mm256_fmadd_ps(a, a, a);"
        "out = (int)_mm256_cvtss_f32(a);", ("AVX",)),
    Isa("F16C", ("-mf16c",), "__m128i h = _mm_set1_epi16((short)x); __m128 f = _mm_cvtph_ps(h);"
        "out = (int)_mm_cvtss_f32(f);", ("AVX",)),
    Isa("BMI2", ("-mbmi2",), "out = (int)_pdep_u32((unsigned)x, 0x5555u);"),
    Isa("AVX_VNNI", ("-mavx2", "-mavxvnni"), "__m256i a = _mm256_set1_epi32(x);"
        "a = _mm256_dpbusd_avx_epi32(a, a, a); out = _mm256_extract_epi32(a, 0);", ("AVX2",)),
    Isa("AVX512", ("-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512dq", "-mavx512bw"),
        "__m512i a = _mm512_set1_epi32(x); __m512i b = _mm512_add_epi8(a, a);"
        "b = _mm512_conflict_epi32(b); __m512d d = _mm512_and_pd(_mm512_castsi512_pd(b), _mm512_castsi512_pd(a));"
        "__m256i v = _mm256_mask_add_epi32(_mm256_set1_epi32(x), (__mmask8)x, _mm256_set1_epi32(1), "
        "_mm256_set1_epi32(2)); out = _mm512_reduce_add_epi32(_mm512_castpd_si512(d)) + _mm256_extract_epi32(v, 0);",
        ("AVX2",)),
    Isa("AVX512_VBMI", ("-mavx512f", "-mavx512vbmi"), "__m512i a = _mm512_set1_epi32(x);"
        "a = _mm512_permutexvar_epi8(a, a); out = _mm512_reduce_add_epi32(a);", ("AVX512",)),
    Isa("AVX512_VNNI", ("-mavx512f", "-mavx512vnni"), "__m512i a = _mm512_set1_epi32(x);"
        "a = _mm512_dpbusd_epi32(a, a, a); out = _mm512_reduce_add_epi32(a);", ("AVX512",)),
    Isa("AVX512_BF16", ("-mavx512f", "-mavx512bf16"), "__m512 a = _mm512_set1_ps((float)x);"
        "__m512bh h = _mm512_cvtne2ps_pbh(a, a); __m512 r = _mm512_dpbf16_ps(a, h, h);"
        "out = (int)_mm512_reduce_add_ps(r);", ("AVX512",)),
    # AMX needs the kernel's permission for the tile state (arch_prctl ARCH_REQ_XCOMP_PERM) and a
    # hypervisor that enables it; CPUID alone proves neither. ggml's AMX kernels also use VNNI.
    Isa("AMX_TILE", ("-mamx-tile",), "AMX_SETUP _tile_zero(0); _tile_release(); out = x;", ("AVX512_VNNI",)),
    Isa("AMX_INT8", ("-mamx-tile", "-mamx-int8"), "AMX_SETUP _tile_zero(0); _tile_zero(1); _tile_zero(2);"
        "_tile_dpbssd(0, 1, 2); _tile_release(); out = x;", ("AMX_TILE",)),
    Isa("AMX_BF16", ("-mamx-tile", "-mamx-bf16"), "AMX_SETUP _tile_zero(0); _tile_zero(1); _tile_zero(2);"
        "_tile_dpbf16ps(0, 1, 2); _tile_release(); out = x;", ("AMX_TILE",)),
)

_PROGRAM = r"""
#include <immintrin.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#define AMX_SETUP \
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) != 0) return 3; \
    unsigned char cfg[64]; memset(cfg, 0, sizeof cfg); cfg[0] = 1; \
    for (int t = 0; t < 3; t++) { cfg[16 + 2 * t] = 64; cfg[48 + t] = 16; } \
    _tile_loadconfig(cfg);
int main(int argc, char **argv) {
    (void)argv;
    volatile int x = argc;
    int out = 0;
    BODY
    printf("%d\n", out);
    return 0;
}
"""


def is_x86() -> bool:
    """True on x86-64, the only architecture whose flags this module chooses."""
    return platform.machine().lower() in {"x86_64", "amd64", "i686", "i386"}


def compiler() -> str | None:
    """The C compiler the probes use: $CC, else cc or gcc on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    return None


def runs(isa: Isa, cc: str, workdir: Path) -> tuple[bool, str]:
    """Compile the set's probe and run it in a child: (ran, why). A signal or a refused
    permission is 'no'; so is a compiler too old to know the set."""
    src = workdir / f"{isa.option}.c"
    exe = workdir / isa.option
    src.write_text(_PROGRAM.replace("BODY", isa.body))
    built = subprocess.run([cc, "-O1", *isa.gcc_flags, str(src), "-o", str(exe)],
                           capture_output=True, text=True, timeout=120)
    if built.returncode != 0:
        return False, "the compiler cannot build it"
    try:
        ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "the probe hung"
    if ran.returncode < 0:
        return False, f"killed by signal {-ran.returncode} (the CPU or hypervisor refuses it)"
    if ran.returncode == 3:
        return False, "the kernel refused the AMX tile state"
    if ran.returncode != 0:
        return False, f"the probe exited {ran.returncode}"
    return True, "runs"


def probe() -> dict[str, tuple[bool, str]]:
    """Every set's verdict on this machine, in ISAS order; sets whose prerequisites failed are off."""
    cc = compiler()
    if cc is None:
        return {isa.option: (False, "no C compiler to probe with") for isa in ISAS}
    verdicts: dict[str, tuple[bool, str]] = {}
    with tempfile.TemporaryDirectory(prefix="extract-cpu-") as tmp:
        for isa in ISAS:
            missing = [need for need in isa.needs if not verdicts.get(need, (False, ""))[0]]
            if missing:
                verdicts[isa.option] = (False, f"needs {', '.join(missing)}")
                continue
            verdicts[isa.option] = runs(isa, cc, Path(tmp))
    return verdicts


def tuning() -> str | None:
    """The CPU model gcc would tune for here ('znver3', 'sapphirerapids'), or None.

    ``-mtune`` orders and picks instructions within the sets allowed; it never adds one, so a
    build tuned here still runs anywhere the sets run. It is the part of ``-march=native`` that
    makes prompt evaluation faster (about 6 % on an EPYC, benchmarks/llama_build.py)."""
    cc = compiler()
    if cc is None:
        return None
    try:
        shown = subprocess.run([cc, "-march=native", "-Q", "--help=target"], capture_output=True, text=True,
                               timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in shown.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "-mtune=" and value.strip() and value.strip() != "generic":
            return value.strip()
    return None


def cmake_args(verdicts: dict[str, tuple[bool, str]] | None = None) -> str:
    """The ggml CMake options for a portable build of exactly the proven sets, tuned for this CPU
    model (x86), or ggml's own defaults elsewhere (ARM and Apple builds detect at compile time
    what they run)."""
    if not is_x86():
        return ""
    verdicts = probe() if verdicts is None else verdicts
    parts = ["-DGGML_NATIVE=OFF"]
    parts += [f"-DGGML_{option}={'ON' if ok else 'OFF'}" for option, (ok, _) in verdicts.items()]
    tune = tuning()
    if tune:
        parts += [f"-DCMAKE_C_FLAGS=-mtune={tune}", f"-DCMAKE_CXX_FLAGS=-mtune={tune}"]
    return " ".join(parts)


def wheel_dir(version: str, args: str, python: str) -> Path:
    """Where the wheel for this version, these flags and this interpreter is kept."""
    tag = subprocess.run([python, "-c", "import sys; print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    key = hashlib.sha256(f"{version}|{args}|{tag}|{platform.machine()}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("EXTRACT_WHEEL_CACHE", Path.home() / ".cache" / "extract" / "llama-wheels"))
    return root / f"{version}-{key}"


def build_wheel(python: str, version: str, args: str) -> Path | None:
    """The llama-cpp-python wheel built with exactly ``args``: kept from before, or built now."""
    where = wheel_dir(version, args, python)
    wheels = sorted(where.glob("llama_cpp_python-*.whl"))
    if wheels:
        print(f"llama-cpp-python {version}: kept wheel for CMAKE_ARGS='{args}' ({where})", flush=True)
        return wheels[-1]
    print(f"building llama-cpp-python {version} with CMAKE_ARGS='{args}' (about 8 minutes on 2 cores) ...", flush=True)
    where.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([python, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps",
                            f"llama-cpp-python=={version}", "-w", str(where)], env={**os.environ, "CMAKE_ARGS": args})
    wheels = sorted(where.glob("llama_cpp_python-*.whl"))
    if built.returncode != 0 or not wheels:
        return None
    (where / "CMAKE_ARGS").write_text(args + "\n")
    return wheels[-1]


def install(python: str, version: str, portable: bool = False) -> int:
    """Build llama-cpp-python with the proven flags (``portable``: x86-64-v3's, for other machines;
    plus $CMAKE_ARGS, e.g. -DGGML_CUDA=on) unless a wheel for exactly these flags is kept, then
    install it into ``python``'s environment."""
    chosen = portable_args() if portable else cmake_args()
    args = " ".join(part for part in (chosen, os.environ.get("CMAKE_ARGS", "")) if part)
    wheel = build_wheel(python, version, args)
    if wheel is None:
        return 1
    return subprocess.run([python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps",
                           str(wheel)]).returncode


# x86-64-v3 (AVX2, FMA, F16C, BMI2): every x86 server CPU since 2015 (Haswell, Zen). For an image
# or a wheel that runs on machines nobody could probe at build time; no AVX-512, no AMX.
PORTABLE = ("SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2")


def portable_args() -> str:
    """Build flags for machines other than this one (the container image)."""
    if not is_x86():
        return "-DGGML_NATIVE=OFF"
    return " ".join(["-DGGML_NATIVE=OFF", *(f"-DGGML_{isa.option}={'ON' if isa.option in PORTABLE else 'OFF'}"
                                             for isa in ISAS)])


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "report"
    if command == "cmake-args":
        print(portable_args() if "--portable" in argv else cmake_args())
        return 0
    if command == "report":
        if not is_x86():
            print(f"{platform.machine()}: not x86; llama.cpp's own detection applies")
            return 0
        for option, (ok, why) in probe().items():
            print(f"{option:<12} {'yes' if ok else 'no '}  {why}")
        return 0
    if command == "install" and len(argv) in (4, 5):
        return install(argv[2], argv[3], portable="--portable" in argv[4:])
    print("usage: cpu.py [cmake-args [--portable]|report|install PYTHON VERSION [--portable]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
