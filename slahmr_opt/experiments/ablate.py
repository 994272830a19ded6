"""Ablation grids: fit every benchmark sequence under every config variant and tabulate the metrics.

Grid file (YAML)::

    description: what the grid compares          # optional, free text
    config: stages_1_2                           # optional base config (path or name in configs/)
    overrides: [data.min_conf=0.3]               # optional, applied to every variant
    variants:
      default: {}                                # the base config as is
      no_pose_prior:
        overrides: [stages.smooth.weights.pose_prior=0]
      lbfgs:
        config: slahmr_lbfgs                     # replaces the base config for this variant
        overrides: []

A variant's ``config`` replaces the base ``config``; its ``overrides`` come after the base
``overrides``. Config paths are looked up next to the grid file first, then as
``load_config`` does (a bare name is a file in the shipped ``configs/`` folder). Every variant is
resolved with ``load_config`` before any cell runs, so a typo fails in seconds with a
``ConfigError`` naming the grid file and the variant.

Cells are variants x sequences of a benchmark folder (``index.json`` lists the sequences; each
sequence folder holds ``tracks.npz``, ``cameras.npz`` and ``gt.npz``). Cells run in a local process
pool or as Ray tasks. Each cell writes ``out/cells/<variant>/<sequence>/cell.json`` with the hash of
its resolved config; a rerun skips cells whose ``cell.json`` carries the same hash, so a grid
stopped half way resumes where it stopped, and a changed variant is refitted.

Outputs: ``out/table.md`` and ``out/table.csv`` (one row per variant: ``frames`` and times, i.e.
keys with a part ending in ``seconds``, are summed over sequences; every other number is the
frame-weighted mean),
``out/cells.csv`` (one row per cell) and ``out/cells/<variant>/config.yaml`` (resolved config).
Nested metric entries are flattened with dots: ``{"stage_seconds": {"root": 2}}`` becomes
``stage_seconds.root`` and ``{"stages": [{"name": "root", "seconds": 2}]}`` ``stages.root.seconds``.

Times are measured inside the workers: cells running side by side slow each other, and each
worker's first cell pays one-off warm-up costs (so the first variant looks slower). Compare
accuracy from any run; compare speed from a run with ``workers=1`` whose first cell is discarded,
or with ``bench/speed.py``.
"""

import hashlib
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from slahmr_opt.config import CONFIG_DIR, load_config, to_yaml
from slahmr_opt.errors import ConfigError, InputError, SlahmrOptError
from slahmr_opt.experiments.ablate_table import flatten_metrics, write_tables
from slahmr_opt.experiments.batch import BatchSettings, init_ray

logger = logging.getLogger(__name__)

#: ``scorer(seq_dir, out_dir, config=None, overrides=()) -> dict``, like ``fit_and_score``.
Scorer = Callable[..., dict]

GRID_KEYS = {"description", "config", "overrides", "variants"}
VARIANT_KEYS = {"config", "overrides"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Variant:
    """One resolved grid variant: what the scorer is called with, and the resolved config's hash."""

    name: str
    config: str | None
    """Absolute config path, or a shipped config name, or None for the defaults."""
    overrides: tuple[str, ...]
    config_hash: str
    config_yaml: str


@dataclass(frozen=True)
class Cell:
    """One (variant, sequence) fit; picklable so it can travel to pool or Ray workers."""

    variant: str
    sequence: str
    seq_dir: str
    cell_dir: str
    config: str | None
    overrides: tuple[str, ...]
    config_hash: str
    single_thread: bool


def _resolve_config_path(value: Any, grid_path: Path, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{grid_path}: {where}: config must be a path or a name, got {value!r}")
    local = grid_path.parent / value
    return str(local.resolve()) if local.is_file() else value


def _check_overrides(value: Any, grid_path: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{grid_path}: {where}: overrides must be a list of key=value strings")
    for item in value:
        if "=" not in item:
            raise ConfigError(f"{grid_path}: {where}: override {item!r} is not key=value")
    return tuple(value)


def _read_grid(grid_path: Path) -> dict:
    if not grid_path.is_file():
        raise ConfigError(f"{grid_path}: grid file not found")
    try:
        grid = yaml.safe_load(grid_path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{grid_path}: not valid YAML ({e})".splitlines()[0]) from None
    if not isinstance(grid, dict):
        raise ConfigError(f"{grid_path}: a grid is a mapping with a 'variants' key")
    unknown = set(grid) - GRID_KEYS
    if unknown:
        raise ConfigError(f"{grid_path}: unknown grid keys {sorted(unknown)}; known {GRID_KEYS}")
    variants = grid.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"{grid_path}: 'variants' must be a non-empty mapping of name -> spec")
    return grid


def load_grid(grid_path: str | Path) -> list[Variant]:
    """Read a grid file and resolve every variant's config (nothing runs).

    Raises:
        ConfigError: naming the grid file and the variant, for a malformed grid or a variant
            whose config does not resolve (unknown key, bad value, missing file).
    """
    grid_path = Path(grid_path)
    grid = _read_grid(grid_path)
    base_config = _resolve_config_path(grid.get("config"), grid_path, "base")
    base_overrides = _check_overrides(grid.get("overrides"), grid_path, "base")
    variants = []
    for name, spec in grid["variants"].items():
        where = f"variant {name!r}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError(f"{grid_path}: {where}: names may use letters, digits and _.+-")
        spec = spec or {}
        if not isinstance(spec, dict) or set(spec) - VARIANT_KEYS:
            raise ConfigError(f"{grid_path}: {where}: a variant may only set {VARIANT_KEYS}")
        config = base_config
        if spec.get("config") is not None:
            config = _resolve_config_path(spec["config"], grid_path, where)
        overrides = base_overrides + _check_overrides(spec.get("overrides"), grid_path, where)
        try:
            cfg = load_config(config, list(overrides))
        except ConfigError as e:
            raise ConfigError(f"{grid_path}: {where}: {e}") from None
        text = to_yaml(cfg)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        variants.append(Variant(name, config, overrides, digest, text))
    return variants


def find_grid(grid: str | Path) -> Path:
    """A grid path as given, or a bare name looked up in the shipped ``configs/ablations/``."""
    path = Path(grid)
    shipped = CONFIG_DIR / "ablations" / f"{grid}.yaml"
    return shipped if not path.is_file() and shipped.is_file() else path


def list_sequences(bench_dir: str | Path) -> list[tuple[str, Path]]:
    """``(name, folder)`` of every sequence in ``bench_dir/index.json``.

    ``index.json`` is a list, or a mapping with a ``sequences`` list; an entry is a name (a folder
    of ``bench_dir``) or a mapping with ``name`` and optionally ``dir`` / ``path``.
    """
    index_path = Path(bench_dir) / "index.json"
    if not index_path.is_file():
        raise InputError(index_path, "benchmark index not found")
    index = json.loads(index_path.read_text())
    entries = index.get("sequences") if isinstance(index, dict) else index
    if not isinstance(entries, list) or not entries:
        raise InputError(index_path, "expected a non-empty list of sequences")
    out = []
    for entry in entries:
        if isinstance(entry, str):
            name, rel = entry, entry
        elif isinstance(entry, dict) and "name" in entry:
            name = str(entry["name"])
            rel = entry.get("dir") or entry.get("path") or name
        else:
            raise InputError(index_path, f"sequence entry {entry!r} has no name")
        seq_dir = Path(bench_dir) / rel
        if not seq_dir.is_dir():
            raise InputError(index_path, f"sequence folder {seq_dir} not found")
        out.append((name, seq_dir.resolve()))
    return out


def _cell_done(cell: Cell) -> bool:
    path = Path(cell.cell_dir) / "cell.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("config_hash") == cell.config_hash
    except (json.JSONDecodeError, OSError):
        return False


def run_cell(cell: Cell, scorer: Scorer | None = None) -> dict:
    """Fit and score one cell, write its ``cell.json`` (atomically) and return its record."""
    if cell.single_thread:
        import torch

        torch.set_num_threads(1)
    if scorer is None:
        from slahmr_opt.experiments.bench_run import fit_and_score as scorer
    cell_dir = Path(cell.cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    metrics = scorer(
        Path(cell.seq_dir), cell_dir, config=cell.config, overrides=list(cell.overrides)
    )
    record = {
        "variant": cell.variant,
        "sequence": cell.sequence,
        "config_hash": cell.config_hash,
        "metrics": flatten_metrics(metrics),
    }
    tmp = cell_dir / "cell.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(cell_dir / "cell.json")
    return record


def _run_local(
    cells: list[Cell], workers: int, scorer: Scorer | None, progress: bool
) -> list[tuple[Cell, str]]:
    """Run cells in a spawn-based process pool (in this process when ``workers == 1``)."""
    failures = []
    bar = tqdm(total=len(cells), desc="ablation cells", unit="cell", disable=not progress)
    if workers <= 1:
        for cell in cells:
            try:
                run_cell(cell, scorer)
            except Exception as e:  # a failed fit must not stop the grid
                failures.append((cell, f"{type(e).__name__}: {e}"))
            bar.update()
        bar.close()
        return failures
    import multiprocessing

    # spawn, not fork: forking a process that already runs torch / OpenMP threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_cell, cell, scorer): cell for cell in cells}
        for future in as_completed(futures):
            try:
                future.result()
            except Exception as e:
                failures.append((futures[future], f"{type(e).__name__}: {e}"))
            bar.update()
    bar.close()
    return failures


def _run_ray(
    cells: list[Cell], address: str | None, workers: int, scorer: Scorer | None, progress: bool
) -> list[tuple[Cell, str]]:
    """Run cells as Ray tasks (one CPU each; Ray schedules them)."""
    import ray

    started = init_ray(address, workers)
    failures = []
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        refs = {task.remote(cell, scorer): cell for cell in cells}
        pending = list(refs)
        with tqdm(
            total=len(cells), desc="ablation cells (ray)", unit="cell", disable=not progress
        ) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError as e:
                        failures.append((refs[ref], str(e).strip().splitlines()[-1]))
                    bar.update()
    finally:
        if started:
            ray.shutdown()
    return failures


def run_ablation(
    grid_path: str | Path,
    bench_dir: str | Path,
    out_dir: str | Path,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int = 2,
    scorer: Scorer | None = None,
    progress: bool = True,
) -> Path:
    """Fit every (variant, sequence) cell of a grid on a benchmark and write the tables.

    Args:
        grid_path: grid YAML (format in the module docstring).
        bench_dir: benchmark folder with ``index.json``.
        out_dir: output folder; cells already done there with the same config hash are skipped.
        executor: ``local`` (process pool) or ``ray`` (Ray tasks).
        ray_address: with ``ray``: ``local`` or None starts a local Ray instance with ``workers``
            CPUs (unless Ray is already initialised in this process); anything else, e.g.
            ``auto`` or ``ray://head:10001``, connects to that cluster.
        workers: local pool size, or CPUs of a locally started Ray instance. With more than one,
            every worker runs torch on one thread.
        scorer: ``scorer(seq_dir, out_dir, config=None, overrides=()) -> dict`` of metrics; a
            module-level function (it is pickled). None: ``bench_run.fit_and_score``.
        progress: show a progress bar over cells.

    Returns:
        Path of ``table.md``.

    Raises:
        ConfigError: the grid is malformed or a variant's config does not resolve (before any fit).
        SlahmrOptError: some cells failed (the tables of the others are written first).
    """
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', got {executor!r}")
    if executor == "ray":
        BatchSettings(workers=workers, ray=ray_address or "local")  # Ray installed?
    variants = load_grid(grid_path)
    sequences = list_sequences(bench_dir)
    out_dir = Path(out_dir)
    cells = []
    for variant in variants:
        variant_dir = out_dir / "cells" / variant.name
        variant_dir.mkdir(parents=True, exist_ok=True)
        (variant_dir / "config.yaml").write_text(variant.config_yaml)
        for seq_name, seq_dir in sequences:
            cell_dir = variant_dir / seq_name
            cells.append(
                Cell(
                    variant.name,
                    seq_name,
                    str(seq_dir),
                    str(cell_dir.resolve()),
                    variant.config,
                    variant.overrides,
                    variant.config_hash,
                    single_thread=workers > 1,
                )
            )
    todo = [c for c in cells if not _cell_done(c)]
    logger.info(
        "%d variants x %d sequences: %d cells to run, %d already done",
        len(variants),
        len(sequences),
        len(todo),
        len(cells) - len(todo),
    )
    if executor == "ray":
        failures = _run_ray(todo, ray_address, workers, scorer, progress)
    else:
        failures = _run_local(todo, workers, scorer, progress)
    records = [
        json.loads((Path(c.cell_dir) / "cell.json").read_text()) for c in cells if _cell_done(c)
    ]
    table = write_tables(out_dir, records, [v.name for v in variants])
    logger.info("table written to %s", table)
    for cell, message in failures:
        logger.error("cell %s/%s failed: %s", cell.variant, cell.sequence, message)
    if failures:
        raise SlahmrOptError(
            f"{len(failures)} of {len(todo)} cells failed (first: {failures[0][0].variant}/"
            f"{failures[0][0].sequence}: {failures[0][1]}); the table of the others is {table}"
        )
    return table
