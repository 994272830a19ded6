"""Run the solver over a benchmark (``bench_make``) and score it against the ground truth.

Per sequence, ``OUT/<name>/`` gets the solver's ``results.npz`` and companions plus
``score.json`` (metrics, timing, final losses and the config hash); a rerun skips sequences whose
``score.json`` has the same config hash. ``OUT/metrics.json`` collects them::

    {"config_hash": ..., "sequences": {name: {...}}, "mean": {...}, "by_camera": {kind: {...}}}

Means are frame-weighted for the error metrics; ``seconds`` and ``frames`` in a mean are totals.
"""

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from slahmr_opt.config import Config, load_config, to_yaml
from slahmr_opt.errors import InputError
from slahmr_opt.experiments.batch import BatchSettings, Job, folder_inputs, run_jobs
from slahmr_opt.experiments.evaluate import evaluate_result
from slahmr_opt.files.checks import load_json, write_atomic
from slahmr_opt.files.outputs import claimed_output
from slahmr_opt.inputs.observations import load_observations_with
from slahmr_opt.io.results import write_result
from slahmr_opt.solve import solve

logger = logging.getLogger(__name__)

METRIC_KEYS = (
    "w_mpjpe100",
    "wa_mpjpe100",
    "rte",
    "jitter",
    "foot_sliding",
    "pa_mpjpe",
    "mpjpe",
    "pve",
    "accel_error",
    "facing_off45",
)
"""Error metrics reported in the means (those ``evaluate_result`` provides)."""
TOTAL_KEYS = ("seconds", "frames")


def config_hash(cfg: Config) -> str:
    """Short hash of the resolved config (what decides whether a result can be reused)."""
    return hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:16]


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path`` (``files.checks.load_json``'s InputError naming it if missing
    or unreadable, and if it holds no object)."""
    data = load_json(path, what)
    if not isinstance(data, dict):
        raise InputError(path, f"{what} is not a JSON object")
    return data


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON, atomically (never half a file under ``path``'s name)."""
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2).encode()))


def read_index(bench: Path, needs) -> dict:
    """The benchmark index ``bench/index.json``, checked before any work: at least one sequence,
    each a plain folder name of ``bench`` holding the files ``needs(folder, meta)`` lists as
    ``(path, what)`` pairs.

    Raises:
        InputError: naming ``index.json`` or the missing file.
    """
    path = bench / "index.json"
    index = read_json(path, "benchmark index")
    entries = index.get("sequences")
    if not isinstance(entries, list) or not entries:
        raise InputError(path, "benchmark index lists no sequences ('sequences' must be a "
                         "non-empty list)")  # fmt: skip
    names = []
    for k, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in ("", ".", "..") or any(
            c in name for c in "/\\\0"
        ):
            raise InputError(path, f"sequence {k}: 'name' must be a folder name, got {name!r}")
        names.append(name)
    if len(set(names)) != len(names):
        raise InputError(path, "sequence names repeat")
    for name in names:
        seq = bench / name
        meta = read_json(seq / "meta.json", "sequence meta file")
        for file, what in needs(seq, meta):
            if not file.is_file():
                raise InputError(file, f"{what} not found (sequence {name} of {path})")
    return index


def _sequence_files(seq: Path, meta: dict) -> list[tuple[Path, str]]:
    files = [(seq / "tracks.npz", "tracks file"), (seq / "gt.npz", "ground truth")]
    if not meta.get("static", False):
        files.append((seq / "cameras.npz", "cameras file"))
    return files


def _observations(seq: Path, cfg: Config):
    meta = read_json(seq / "meta.json", "sequence meta file")
    static = bool(meta.get("static", False))
    return load_observations_with(
        cfg.data,
        seq / "tracks.npz",
        None if static else seq / "cameras.npz",
        static=static,
        points_path=seq / "points.npz" if (seq / "points.npz").exists() else None,
    )


def fit_and_score(
    seq_dir: str | Path,
    out_dir: str | Path,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict:
    """Solve one benchmark sequence, write the results into ``out_dir`` and score them.

    Args:
        seq_dir: sequence folder (``tracks.npz``, ``cameras.npz``, ``gt.npz``, ``meta.json``).
        out_dir: where ``results.npz``, its companions and ``score.json`` go.
        config: YAML config (path or shipped name), None for the defaults.
        overrides: ``key=value`` config overrides.
        progress: show the solver's progress bars.

    Returns:
        ``evaluate_result``'s metrics plus ``seconds`` (wall time of the solve), ``frames``
        (scored frames), ``stage_seconds`` / ``final_losses`` ({stage: value}), ``camera``,
        ``people`` and ``config_hash``.
    """
    seq, out = Path(seq_dir), Path(out_dir)
    cfg = load_config(config, list(overrides))
    meta = read_json(seq / "meta.json", "sequence meta file")
    obs = _observations(seq, cfg)
    start = time.perf_counter()
    result = solve(obs, cfg, progress=progress)
    seconds = time.perf_counter() - start
    path = write_result(result, out)
    metrics = evaluate_result(path, seq / "gt.npz")
    score = {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in metrics.items()}
    score.update(
        seconds=seconds,
        stage_seconds={s.name: s.seconds for s in result.stages},
        final_losses={s.name: s.final_loss for s in result.stages},
        camera=meta.get("camera"),
        people=meta.get("people", obs.num_people),
        config_hash=config_hash(cfg),
    )
    write_json(out / "score.json", score)
    return score


def summarize_scores(scores: dict[str, dict]) -> dict[str, float]:
    """Frame-weighted means of the error metrics; totals of ``seconds`` and ``frames``."""
    rows = list(scores.values())
    if not rows:
        return {}
    frames = np.array([r["frames"] for r in rows], dtype=float)
    mean: dict[str, float] = {}
    for key in METRIC_KEYS:
        vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        ok = np.isfinite(vals)
        if ok.any():
            mean[key] = float((vals[ok] * frames[ok]).sum() / frames[ok].sum())
    mean["seconds"] = float(sum(r["seconds"] for r in rows))
    mean["frames"] = int(frames.sum())
    mean["sequences"] = len(rows)
    mean["frames_per_second"] = mean["frames"] / max(mean["seconds"], 1e-9)
    return mean


def sequence_job(inputs: Path, out: Path, config_yaml: str) -> dict:
    """A batch job (``experiments.batch``): ``fit_and_score`` of the sequence whose files are
    in ``inputs``, with the resolved config ``config_yaml``."""
    config = inputs.parent / f"{inputs.name}.config.yaml"
    config.write_text(config_yaml)
    return fit_and_score(inputs, out, config)


def run_benchmark(
    bench_dir: str | Path,
    out_dir: str | Path,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    batch: BatchSettings | None = None,
) -> dict:
    """Fit and score every sequence of ``bench_dir/index.json``; write ``out_dir/metrics.json``.

    Sequences already scored with the same config (``score.json`` with the same hash) are
    read back instead of solved again, so an interrupted run resumes. With ``batch`` the others
    run as batch jobs (``experiments.batch``: a process pool or Ray, results sent back here); a
    sequence that fails there is left out of the means and named in ``failed``. The index and every
    sequence's files are checked, and ``out_dir`` is held (``claimed_output``: writable, one run
    at a time; its ``metrics.json`` is rewritten), before any work.

    Returns:
        ``{"config_hash", "sequences": {name: score}, "mean": {...}, "by_camera": {...}}``.

    Raises:
        InputError: the index is missing, malformed, empty or names missing files.
        ConfigError: the config. OutputError: ``out_dir`` is not writable or in use.
    """
    bench, out = Path(bench_dir), Path(out_dir)
    index = read_index(bench, _sequence_files)
    cfg = load_config(config, list(overrides))
    cfg_hash = config_hash(cfg)

    def fit(name: str) -> dict:
        score = fit_and_score(bench / name, out / name, config, overrides)
        logger.info("%s: W-MPJPE100 %.1f mm in %.1f s", name, score.get("w_mpjpe100", np.nan),
                    score["seconds"])  # fmt: skip
        return score

    with claimed_output(out, True, "metrics.json"):
        if batch is None:
            scores = score_sequences(index, out, cfg_hash, fit, "benchmark")
            return write_report(out, cfg_hash, config, overrides, scores, scores)
        cfg_yaml = to_yaml(cfg)
        names = [e["name"] for e in index.get("sequences", [])]
        scores = {n: s for n in names if (s := scored(out, n, cfg_hash)) is not None}
        jobs = [Job(n, sequence_job, folder_inputs(bench / n), {"config_yaml": cfg_yaml}, cfg_hash)
                for n in names if n not in scores]  # fmt: skip
        failed = {}
        for outcome in run_jobs(jobs, out, batch):
            if outcome.status == "failed":
                failed[outcome.name] = outcome.error
            else:
                scores[outcome.name] = outcome.record
        scores = {n: scores[n] for n in names if n in scores}
        return write_report(out, cfg_hash, config, overrides, scores, scores, failed=failed)


def score_sequences(index: dict, out: Path, cfg_hash: str, score_one, desc: str) -> dict:
    """``{name: score_one(name)}`` over a benchmark index's sequences, reading back the
    ``out/name/score.json`` of those already scored with the config of ``cfg_hash``."""
    rows: dict[str, dict] = {}
    for entry in tqdm(index.get("sequences", []), desc=desc, unit="seq"):
        name = entry["name"]
        old = scored(out, name, cfg_hash)
        rows[name] = old if old is not None else score_one(name)
    return rows


def scored(out: Path, name: str, cfg_hash: str) -> dict | None:
    """``out/name/score.json`` if it was scored with the config of ``cfg_hash``, else None."""
    score_path = out / name / "score.json"
    if not score_path.is_file():
        return None
    try:
        old = load_json(score_path, "score")
    except InputError as e:
        logger.warning("%s; scoring the sequence again", e)
        return None
    if isinstance(old, dict) and old.get("config_hash") == cfg_hash:
        logger.info("%s: already scored with this config, skipped", name)
        return old
    return None


def write_report(out: Path, cfg_hash: str, config, overrides, rows: dict, scored: dict,
                 mean_extra: dict | None = None, **extra) -> dict:  # fmt: skip
    """Write and return ``out/metrics.json``: every row, and the means over ``scored`` in all
    (with ``mean_extra``) and per camera kind, plus ``extra`` keys."""
    cameras = sorted({r.get("camera") or "?" for r in rows.values()})
    report = {
        "config_hash": cfg_hash,
        "config": str(config) if config is not None else None,
        "overrides": list(overrides),
        "sequences": rows,
        "mean": summarize_scores(scored) | (mean_extra or {}),
        "by_camera": {
            c: summarize_scores({k: v for k, v in scored.items() if v.get("camera") == c})
            for c in cameras
        },
        **extra,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    return report
