"""``bench run --video``: ``slahmr-opt run`` (front end, camera, fit; no render) on every video of
a rendered-video benchmark (``video_bench``), scored against its ground truth.

Per sequence, ``OUT/<name>/`` gets ``run``'s outputs (``frontend/``, ``results.npz``, ...), the
ground truth matched to the front end's track (``gt_matched.npz``) and ``score.json``: the
``evaluate_result`` metrics plus what only a video run has:

- ``detection_rate``: frames where the front end saw the person, over the video's frames;
- ``tracks``: the front end's tracks (id -> detected frames); the video shows one person, so
  none or more than one tracked is a failure (``failed`` and ``reason``, no metrics);
- ``alpha`` / ``alpha_true`` / ``alpha_ratio``: the fitted camera scale against the true one,
  the scale of the similarity that maps the front end's camera centres onto the true ones (NaN
  for a camera the front end calls static, or a true path under 10 cm);
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
from tqdm import tqdm

from slahmr_opt.config import Config, load_config
from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.eval.bench_run import config_hash, read_json, summarize_scores
from slahmr_opt.eval.evaluate import evaluate_result, read_ground_truth
from slahmr_opt.frontend.blazepose import FrontEndUnavailableError
from slahmr_opt.frontend.camera_eval import umeyama
from slahmr_opt.inputs.checks import load_npz
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
    ("stature", "stature", 1.0, "{:9.2f}"),
    ("stature_true", "true", 1.0, "{:9.2f}"),
    ("focal", "focal", 1.0, "{:9.0f}"),
    ("focal_true", "true", 1.0, "{:9.0f}"),
)


def _tracks(front: Path) -> dict[str, int]:
    """Track id -> detected frames of the front end's ``tracks.npz`` ({} if none written)."""
    path = front / "tracks.npz"
    if not path.is_file():
        return {}
    data = load_npz(path, "tracks file")
    return {str(k): int(v) for k, v in zip(data["track_ids"], data["vis_mask"].sum(1),
                                            strict=True)}  # fmt: skip


def camera_scale_true(front: Path, gt: dict) -> float:
    """Metres per unit of the front end's camera translation (``cameras.npz``), measured on the
    true camera centres; NaN for a static estimate or a true path under ``MIN_PATH_M``."""
    summary = front / "camera_estimate.json"
    if summary.is_file() and json.loads(summary.read_text()).get("is_static"):
        return float("nan")
    cams = load_npz(front / "cameras.npz", "cameras file")
    w2c = np.asarray(cams["w2c"], np.float64)
    est = -np.einsum("tji,tj->ti", w2c[:, :3, :3], w2c[:, :3, 3])
    R, t = np.asarray(gt["cam_R"], np.float64), np.asarray(gt["cam_t"], np.float64)
    true = -np.einsum("tji,tj->ti", R, t)[: len(est)]
    if np.linalg.norm(np.diff(true, axis=0), axis=1).sum() < MIN_PATH_M:
        return float("nan")
    return umeyama(est[: len(true)], true)[0]


def _focal(front: Path) -> float:
    path = front / "camera_estimate.json"
    if not path.is_file():
        return float("nan")
    return float(json.loads(path.read_text())["intrinsics"][0])


def score_video(seq: Path, out: Path, cfg: Config, progress: bool = False) -> dict:
    """Run ``slahmr-opt run`` on one sequence's video and score it (see the module docstring).

    Raises:
        InputError: the sequence folder lacks ``meta.json``, the video or ``gt.npz``.
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
    try:
        report = run_video(video, out, cfg, settings, progress=progress, render=False)
    except FrontEndUnavailableError:
        raise  # every video would fail the same way: say what to install
    except SlahmrOptError as e:  # no person, tracks too short: a failure row, not a crash
        tracks = _tracks(out / "frontend")
        return row | {"failed": True, "reason": str(e), "tracks": tracks,
                      "detection_rate": max(tracks.values(), default=0) / T,
                      "seconds": time.perf_counter() - start}  # fmt: skip
    seconds = time.perf_counter() - start
    front = out / "frontend"
    tracks = _tracks(front)
    row |= {"tracks": tracks, "detection_rate": sum(tracks.values()) / T, "seconds": seconds,
            "run_seconds": report.seconds, "focal": _focal(front)}  # fmt: skip
    results = out / "results.npz"
    pred = read_result(results)
    ids = [str(s) for s in pred["track_ids"]]
    if len(ids) != 1:
        return row | {"failed": True, "reason": f"{len(ids)} people tracked, the video has one"}
    matched = dict(gt, track_ids=np.array(ids))
    np.savez(out / "gt_matched.npz", **matched)
    metrics = evaluate_result(results, out / "gt_matched.npz")
    row |= {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in metrics.items()}
    row["alpha_true"] = camera_scale_true(front, gt)
    row["alpha_ratio"] = row["alpha"] / row["alpha_true"]
    row["stature"] = float(np.asarray(pred["stature"]).reshape(-1)[0]) if "stature" in pred \
        else float("nan")  # fmt: skip
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
    cfg = load_config(config, list(overrides))
    cfg_hash = config_hash(cfg)
    rows: dict[str, dict] = {}
    for entry in tqdm(index.get("sequences", []), desc="video benchmark", unit="seq"):
        name = entry["name"]
        score_path = out / name / "score.json"
        if score_path.is_file():
            old = json.loads(score_path.read_text())
            if old.get("config_hash") == cfg_hash:
                logger.info("%s: already scored with this config, skipped", name)
                rows[name] = old
                continue
        (out / name).mkdir(parents=True, exist_ok=True)
        rows[name] = score_video(bench / name, out / name, cfg, progress)
        score_path.write_text(json.dumps(rows[name], indent=2))
        logger.info("%s: %s", name, rows[name].get("reason") or
                    f"W-MPJPE100 {rows[name].get('w_mpjpe100', np.nan):.1f} mm")  # fmt: skip
    scored = {k: v for k, v in rows.items() if not v.get("failed")}
    cameras = sorted({r.get("camera") or "?" for r in rows.values()})
    report = {
        "config_hash": cfg_hash,
        "config": str(config) if config is not None else None,
        "overrides": list(overrides),
        "sequences": rows,
        "mean": summarize_scores(scored) | _mean_extra(list(rows.values())),
        "by_camera": {
            c: summarize_scores({k: v for k, v in scored.items() if v.get("camera") == c})
            for c in cameras
        },
        "failures": sorted(set(rows) - set(scored)),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report


def format_video_table(report: dict) -> str:
    """Plain-text table, one row per sequence (failures say why)."""
    head = f"{'sequence':44s}" + "".join(f"{label:>9s}" for _, label, _, _ in TABLE_KEYS)
    lines = [head]
    for name, row in report["sequences"].items():
        cells = []
        for key, _, factor, fmt in TABLE_KEYS:
            value = row.get(key)
            cells.append(fmt.format(factor * value) if isinstance(value, (int, float))
                         else f"{'-':>9s}")  # fmt: skip
        line = f"{name[:44]:44s}" + "".join(cells)
        if row.get("failed"):
            line += f"  FAILED: {row['reason']}"
        lines.append(line)
    return "\n".join(lines)
