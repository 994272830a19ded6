"""Compare a ``results.npz`` with ground truth.

Ground-truth file (``gt.npz``), in any world frame (the metrics align by similarity):

============  ==============  =================================================
key           shape           meaning
============  ==============  =================================================
joints        (P, T, 24, 3)   world joints of the true bodies, metres
valid         (P, T)          frames with ground truth
track_ids     (P,)            names matching the tracks' ids
alpha         ()              true metres per SLAM translation unit (optional)
============  ==============  =================================================

Frame ``t`` of the ground truth is video frame ``t``; the result's ``frame_offset`` maps its
frames into the video.
"""

from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.eval.metrics import sequence_errors, summarize
from slahmr_opt.inputs.checks import load_npz
from slahmr_opt.io.results import read_result


def read_ground_truth(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    gt = load_npz(path, "ground-truth file")
    for key in ("joints", "valid", "track_ids"):
        if key not in gt:
            raise InputError(path, f"missing key {key!r}")
    if gt["joints"].ndim != 4 or gt["joints"].shape[2:] != (24, 3):
        raise InputError(path, f"joints must be (P, T, 24, 3), got {gt['joints'].shape}")
    return gt


def evaluate_result(pred_path: str | Path, gt_path: str | Path) -> dict[str, float]:
    """Frame-weighted metrics (mm) over every person and valid frame of the prediction.

    Returns:
        ``w_mpjpe100``, ``wa_mpjpe100``, ``pa_mpjpe``, ``mpjpe``, ``frames``, and ``alpha`` /
        ``alpha_true`` (estimated and true camera scale; NaN if unknown).
    """
    pred = read_result(pred_path)
    gt = read_ground_truth(gt_path)
    if "joints" not in pred:
        raise InputError(pred_path, "results file has no 'joints' key")
    offset = int(pred.get("frame_offset", 0))
    gt_ids = [str(s) for s in gt["track_ids"]]
    per_person = []
    frames = 0
    for p, tid in enumerate(str(s) for s in pred["track_ids"]):
        if tid not in gt_ids:
            raise InputError(gt_path, f"no ground truth for track {tid!r} (has {gt_ids})")
        g = gt_ids.index(tid)
        T = pred["joints"].shape[1]
        if offset + T > gt["joints"].shape[1]:
            raise InputError(
                gt_path,
                f"ground truth has {gt['joints'].shape[1]} frames, the "
                f"result covers frames {offset}..{offset + T - 1}",
            )
        valid = pred["track_mask"][p] & gt["valid"][g, offset : offset + T]
        if not valid.any():
            continue
        per_person.append(
            sequence_errors(pred["joints"][p][valid], gt["joints"][g, offset : offset + T][valid])
        )
        frames += int(valid.sum())
    if not per_person:
        raise InputError(gt_path, "no frame has both a prediction and ground truth")
    metrics = summarize(per_person)
    metrics["frames"] = frames
    metrics["alpha"] = (
        float(pred["world_scale"].reshape(-1)[0]) if "world_scale" in pred else np.nan
    )
    metrics["alpha_true"] = float(gt["alpha"]) if "alpha" in gt else float("nan")
    return metrics
