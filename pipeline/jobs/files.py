"""Nightly jobs: ``jobs/NAME.toml`` files holding the options of ``extract run``.

A job file has the same keys as ``extract run``'s options (``schema``, ``inputs``, ``output``,
``model``, ``workers``, ``samples``, ``adjudicator``, ``budget_usd``, ``max_error_rate`` ...),
validated by the same ``Settings``: a misspelt key is an error that names it, not a
setting silently ignored at 2 a.m.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config.settings import Settings, options
from pipeline.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

JOBS_ENV = "EXTRACT_JOBS_DIR"


def jobs_dir() -> Path:
    return Path(os.environ.get(JOBS_ENV, "jobs"))


@dataclass(frozen=True)
class Job:
    name: str
    path: Path
    options: Settings

    @property
    def base(self) -> Path:
        """Relative paths in the file are relative to its folder."""
        return self.path.parent

    @property
    def output(self) -> Path:
        out = self.options.output.expanduser()
        return out if out.is_absolute() else self.base / out


def job_path(name: str) -> Path:
    given = Path(name)
    if given.suffix == ".toml" and given.is_file():
        return given
    path = jobs_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in jobs_dir().glob("*.toml"))) or "none"
        raise ConfigError(f"no job named '{name}' in {jobs_dir()}/ (jobs there: {known}; set {JOBS_ENV} "
                          "to use another folder)")
    return path


def load_job(name: str, **overrides: Any) -> Job:
    path = job_path(name)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"job file {path} is not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    try:
        opts = options({**data, **{k: v for k, v in overrides.items() if v is not None}})
    except ConfigError as exc:
        raise ConfigError(f"job file {path}: {exc.message}") from None
    return Job(str(data["name"]), path.resolve(), opts)


def list_jobs() -> list[Job | tuple[Path, str]]:
    """Every job in the jobs folder; a broken file is listed with its error, not skipped."""
    out: list[Job | tuple[Path, str]] = []
    for path in sorted(jobs_dir().glob("*.toml")):
        try:
            out.append(load_job(str(path)))
        except ConfigError as exc:
            out.append((path, exc.message))
    return out


def job_status(job: Job) -> dict[str, Any]:
    """What the output root says: documents done by status, the last run, a live lock."""
    import sqlite3

    from pipeline.sink.dataset import manifests
    from pipeline.sink.state import STATE_DIR

    root = job.output
    status: dict[str, Any] = {"job": job.name, "output": str(root), "documents": {}, "last_run": None,
                              "running": None}
    db = root / STATE_DIR / "state.db"
    if db.is_file():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            status["documents"] = dict(conn.execute("select status, count(*) from documents group by status"))
    unreadable: list[str] = []
    runs = manifests(root, unreadable)
    status["manifests_unreadable"] = unreadable
    if runs:
        last = runs[-1]
        status["last_run"] = {"run_id": last["run_id"], "finished_at": last.get("finished_at"),
                              "counts": last["counts"], "seconds": last["timings"]["seconds"],
                              "cost_usd": last.get("adjudication", {}).get("cost_usd")}
        status["runs"] = len(runs)
    status["running"] = _lock_holder(root / STATE_DIR / "lock")
    return status


def _lock_holder(path: Path) -> dict[str, Any] | None:
    """The live holder of a run lock, or None when nobody holds it."""
    import fcntl

    from pipeline.sink.state import read_holder

    if not path.is_file():
        return None
    with path.open("r", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return read_holder(fh)
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None
