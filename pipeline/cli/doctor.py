"""``extract doctor``: does the installed llama.cpp run on this machine, with this model?

The same probe a run makes before its first page (``pipeline.model.probe``), on demand, beside
what the build was compiled for and what this CPU proves it executes: the first thing to run
on a new machine, and what a SIGILL message points to.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from pipeline.cli.options import given, setting_option


@click.command()
@setting_option("model")
@setting_option("threads")
@setting_option("n_gpu_layers")
def doctor(**values: Any) -> None:
    """Check the llama.cpp build against this CPU and run the start-up probe with a model.

    Exit code 0: the model loads and answers; 3: it crashes or fails here (the line says why).
    """
    from pipeline.config.settings import ModelConfig, default_threads
    from pipeline.devtools.cpu import is_x86, probe
    from pipeline.model.probe import REINSTALL, build_features
    from pipeline.model.probe import probe as probe_model
    from pipeline.model.registry import REGISTRY, installed
    from pipeline.model.registry import resolve as resolve_model

    chosen = given(values)
    from pipeline.run.manifest import versions

    click.echo(f"llama-cpp-python {versions()['llama_cpp_python']}")
    built = build_features()
    click.echo(f"build compiled for: {built or 'unknown'}")
    refused: list[str] = []
    if is_x86():
        verdicts = probe()
        runs = [name for name, (ok, _) in verdicts.items() if ok]
        click.echo(f"this CPU runs:      {' '.join(runs) or 'none proven (no C compiler to probe with)'}")
        if runs:
            # llama.cpp names AVX-512 parts 'AVX512', 'AVX512_VNNI', ...; AMX as 'AMX_INT8'
            refused = [name for name in built.split() if name in verdicts and not verdicts[name][0]]
    if refused:
        click.echo(f"the build uses instruction sets this CPU refuses: {' '.join(refused)}; rebuild: {REINSTALL}",
                   err=True)

    model = chosen.get("model") or next((name for name in REGISTRY if installed(name)), None)
    if model is None:
        click.echo("no model to probe: pass --model PATH or pull one ('extract models pull qwen2.5-coder-0.5b')",
                   err=True)
        sys.exit(3 if refused else 0)
    path = resolve_model(model)
    assert path is not None
    if not path.is_file():
        click.echo(f"model file not found: {path}", err=True)
        sys.exit(3)
    threads = chosen.get("threads") or default_threads(1)
    cfg = ModelConfig(path=path, n_threads=threads, n_gpu_layers=chosen.get("n_gpu_layers") or 0)
    verdict = probe_model(cfg)
    if not verdict.ok:
        click.echo(f"model probe: FAILED after {verdict.seconds:.1f} s: {verdict.message}", err=True)
        sys.exit(3)
    click.echo(f"model probe: ok ({path.name} loaded and answered in {verdict.seconds:.1f} s, {threads} threads)")
    if refused:
        sys.exit(3)

