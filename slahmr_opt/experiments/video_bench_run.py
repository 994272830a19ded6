"""``bench run --video``: ``slahmr-opt run`` (front end, camera, fit; no render) on every video of
a rendered-video benchmark (``video_bench``), scored against its ground truth.

Per sequence, ``OUT/<name>/`` gets ``run``'s outputs (``frontend/``, ``results.npz``, ...), the
ground truth matched to the front end's track (``gt_matched.npz``) and ``score.json``: the
``evaluate_result`` metrics plus what only a video run has:

- ``detection_rate``: frames where the front end saw someone (any track), over the video's
  frames;
- ``tracks``: the front end's tracks (id -> detected frames); the video shows one person, so
  none or more than one tracked is a failure (``failed`` and ``reason``, no metrics);
- ``alpha`` / ``alpha_true`` / ``alpha_ratio``: the fitted camera scale against the true one,
  the scale of the similarity that maps the front end's camera centres onto the true ones (NaN
  for a camera the front end calls static, or a true path under 10 cm);
- ``camera_rot_deg``, ``camera_ate_rel``: the front end's camera against the true one
  (``camera_accuracy``);
- ``stature`` / ``stature_true``, ``focal`` / ``focal_true`` (``camera_estimate.json``).

A rerun skips sequences whose ``score.json`` has the same config hash (``run`` itself reuses a
front end it already ran). ``OUT/metrics.json`` is as ``bench run``'s, with failure rows.
"""

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slahmr_opt.config import Config, load_config
from slahmr_opt.errors import InputError, SlahmrOptError
from slahmr_opt.eval.camera_eval import trajectory_error, umeyama
from slahmr_opt.experiments.bench_run import (
    config_hash,
    read_index,
    read_json,
    score_sequences,
    write_json,
    write_report,
)
from slahmr_opt.experiments.evaluate import evaluate_result, read_ground_truth
from slahmr_opt.files.checks import load_npz
from slahmr_opt.files.outputs import claimed_output
from slahmr_opt.frontend.blazepose import FrontEndUnavailableError
from slahmr_opt.io.results import read_result

logger = logging.getLogger(__name__)

MIN_PATH_M = 0.1
"""A true camera path shorter than this has no measurable scale."""
TABLE_KEYS = (
    ("detection_rate", "detect", 100.0, "{:8.0f}%"),
    ("w_mpjpe100", "W-MPJPE", 1.0, "{:9.0f}"),
    ("wa_mpjpe100", "WA-MPJPE", 1.0, "{:9.0f}"),
    ("pa_mpjpe", "PA-MPJPE", 1.0, "{:9.0f}"),
    ("rte", "RTE%", 1.0, "{:9.1f}"),
    ("alpha_ratio", "a/true", 1.0, "{:9.2f}"),
    ("camera_rot_deg", "cam deg", 1.0, "{:9.1f}"),
    ("camera_ate_rel", "cam ATE%", 100.0, "{:8.1f}%"),
    ("stature", "stature", 1.0, "{:9.2f}"),
    ("stature_true", "true", 1.0, "{:9.2f}"),
    ("focal", "focal", 1.0, "{:9.0f}"),
    ("focal_true", "true", 1.0, "{:9.0f}"),
)


def _tracks(front: Path) -> tuple[dict[str, int], int]:
    """Track id -> detected frames of the front end's ``tracks.npz``, and the frames where any
    track is seen (({}, 0) if none was written)."""
    path = front / "tracks.npz"
    if not path.is_file():
        return {}, 0
    data = load_npz(path, "tracks file")
    vis = np.asarray(data["vis_mask"], bool)
    ids = [str(k) for k in data["track_ids"]]
    return dict(zip(ids, vis.sum(1).tolist(), strict=True)), int(vis.any(0).sum())


def _relative_c2w(R_w2c: np.ndarray, t_w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world rotations (T, 3, 3) and centres (T, 3) in the first camera's frame."""
    centres = -np.einsum("tji,tj->ti", R_w2c, t_w2c)
    return R_w2c[0] @ R_w2c.transpose(0, 2, 1), (centres - centres[0]) @ R_w2c[0].T


def camera_accuracy(front: Path, gt: dict, fps: float) -> dict[str, float]:
    """The front end's camera (``cameras.npz``) against the truth.

    Returns:
        ``alpha_true``: metres per unit of its translation, the scale of the similarity mapping
        its centres onto the true ones (NaN for a static estimate or a true path under
        ``MIN_PATH_M``); ``camera_rot_deg``: mean rotation error (first frames agree);
        ``camera_ate_rel``: centre error after that similarity over the true path length
        (``eval.camera_eval.trajectory_error``; NaN without a path).
    """
    nan = float("nan")
    summary = front / "camera_estimate.json"
    static = summary.is_file() and json.loads(summary.read_text()).get("is_static")
    cams = load_npz(front / "cameras.npz", "cameras file")
    w2c = np.asarray(cams["w2c"], np.float64)
    T = min(len(w2c), len(gt["cam_R"]))
    R_est, c_est = _relative_c2w(w2c[:T, :3, :3], w2c[:T, :3, 3])
    R_true, c_true = _relative_c2w(np.asarray(gt["cam_R"][:T], np.float64),
                                   np.asarray(gt["cam_t"][:T], np.float64))  # fmt: skip
    err = trajectory_error(R_est, c_est, R_true, c_true, fps)
    moved = err.path_m >= MIN_PATH_M and not static
    return {
        "alpha_true": umeyama(c_est, c_true)[0] if moved else nan,
        "camera_rot_deg": float(err.rot_abs_deg),
        "camera_ate_rel": float(err.ate_rel) if moved else nan,
    }


def _focal(front: Path) -> float:
    path = front / "camera_estimate.json"
    if not path.is_file():
        return float("nan")
    return float(json.loads(path.read_text())["intrinsics"][0])


def score_video(seq: Path, out: Path, cfg: Config, progress: bool = False) -> dict:
    """Run ``slahmr-opt run`` on one sequence's video and score it (see the module docstring).

    Raises:
        InputError: the sequence folder lacks ``meta.json``, the video or ``gt.npz``, or one
            of them is malformed (not: a video where no person is found, a failure row).
    """
    from slahmr_opt.run import FrontEndSettings, run_video

    meta = read_json(seq / "meta.json", "sequence meta file")
    gt_path = seq / "gt.npz"
    gt = read_ground_truth(gt_path)
    T = gt["joints"].shape[1]
    row = {
        "camera": meta.get("camera"),
        "people": 1,
        "stature_true": float(np.asarray(gt["stature"]).reshape(-1)[0])
        if "stature" in gt else float("nan"),
        "focal_true": float(meta.get("focal_true", float("nan"))),
        "config_hash": config_hash(cfg),
    }  # fmt: skip
    settings = FrontEndSettings(min_track_len=cfg.data.min_track_len)
    start = time.perf_counter()
    video = seq / meta.get("video", "video.mp4")
    if not video.is_file():
        raise InputError(video, "video not found (the sequence's meta.json names it)")
    try:
        report = run_video(video, out, cfg, settings, progress=progress, render=False)
    except FrontEndUnavailableError:
        raise  # every video would fail the same way: say what to install
    except SlahmrOptError as e:  # no person, tracks too short: a failure row, not a crash
        front = out / "frontend"
        # without frontend.json the front end stopped early: its tracks.npz would be stale
        tracks, seen = _tracks(front) if (front / "frontend.json").is_file() else ({}, 0)
        return row | {"failed": True, "reason": str(e), "tracks": tracks,
                      "detection_rate": seen / T,
                      "seconds": time.perf_counter() - start}  # fmt: skip
    seconds = time.perf_counter() - start
    front = out / "frontend"
    tracks, seen = _tracks(front)
    row |= {"tracks": tracks, "detection_rate": seen / T, "seconds": seconds,
            "run_seconds": report.seconds, "focal": _focal(front)}  # fmt: skip
    results = out / "results.npz"
    pred = read_result(results)
    ids = list(pred.track_ids)
    if len(ids) != 1:
        return row | {"failed": True, "reason": f"{len(ids)} people tracked, the video has one"}
    matched = dict(gt, track_ids=np.array(ids))
    np.savez(out / "gt_matched.npz", **matched)
    metrics = evaluate_result(results, out / "gt_matched.npz")
    row |= {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in metrics.items()}
    row |= camera_accuracy(front, gt, pred.fps)
    row["alpha_ratio"] = row["alpha"] / row["alpha_true"]
    row["stature"] = float("nan") if pred.statures is None else float(pred.statures[0])
    row["failed"] = False
    return row


def _mean_extra(rows: list[dict]) -> dict[str, float]:
    out = {}
    for key in ("detection_rate", "alpha_ratio"):
        vals = np.array([r.get(key, np.nan) for r in rows], float)
        if np.isfinite(vals).any():
            out[key] = float(np.nanmean(vals))
    err = [abs(r["stature"] - r["stature_true"]) for r in rows if "stature" in r]
    if err:
        out["stature_abs_error_m"] = float(np.nanmean(err))
    return out


def run_video_benchmark(
    bench_dir: str | Path,
    out_dir: str | Path,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = False,
) -> dict:
    """Run and score every video of ``bench_dir/index.json``; write ``out_dir/metrics.json``.

    Returns:
        ``{"config_hash", "config", "overrides", "sequences": {name: row}, "mean": {...},
        "by_camera": {...}, "failures": [names]}``; means over the scored sequences.
    """
    bench, out = Path(bench_dir), Path(out_dir)
    index = read_json(bench / "index.json", "benchmark index")
    if not index.get("video", False):
        raise InputError(
            bench / "index.json",
            "is not a rendered-video benchmark (bench make --video writes one); "
            "bench run without --video runs this one",
        )
    index = read_index(bench, _video_files)
    cfg = load_config(config, list(overrides))
    cfg_hash = config_hash(cfg)

    def score(name: str) -> dict:
        (out / name).mkdir(parents=True, exist_ok=True)
        row = score_video(bench / name, out / name, cfg, progress)
        write_json(out / name / "score.json", row)
        logger.info("%s: %s", name, row.get("reason") or
                    f"W-MPJPE100 {row.get('w_mpjpe100', np.nan):.1f} mm")  # fmt: skip
        return row

    with claimed_output(out, True, "metrics.json"):
        rows = score_sequences(index, out, cfg_hash, score, "video benchmark")
        scored = {k: v for k, v in rows.items() if not v.get("failed")}
        return write_report(out, cfg_hash, config, overrides, rows, scored,
                            mean_extra=_mean_extra(list(rows.values())),
                            failures=sorted(set(rows) - set(scored)))  # fmt: skip


def _video_files(seq: Path, meta: dict) -> list[tuple[Path, str]]:
    video = meta.get("video", "video.mp4")
    if not isinstance(video, str) or "/" in video or "\\" in video:
        raise InputError(seq / "meta.json", f"'video' must be a file name, got {video!r}")
    return [(seq / "gt.npz", "ground truth"), (seq / video, "video")]


def format_video_table(report: dict) -> str:
    """Plain-text table, one row per sequence (failures say why)."""
    head = f"{'sequence':44s}" + "".join(f"{label:>9s}" for _, label, _, _ in TABLE_KEYS)
    lines = [head]
    for name, row in report["sequences"].items():
        cells = []
        for key, _, factor, fmt in TABLE_KEYS:
            value = row.get(key)
            known = isinstance(value, (int, float)) and np.isfinite(value)
            cells.append(fmt.format(factor * value) if known else f"{'-':>9s}")
        line = f"{name[:44]:44s}" + "".join(cells)
        if row.get("failed"):
            line += f"  FAILED: {row['reason']}"
        lines.append(line)
    return "\n".join(lines)
