"""Fit the body model to one split of the Bandai-Namco mocap and cache the body parameters.

    python -m slahmr_priors.pose_gmm.prepare --mocap ../shared/data/mocap/bandai-namco-2.tar.xz \\
        --split eval --stride 1 --out /tmp/slahmr_opt_mocap_fits/eval_stride1.npz

This is an offline data-preparation script: unlike the prior itself (``model.py``, torch and numpy
only), it uses slahmr_opt's BVH reader, body model and fitter.

Cache layout (``.npz``; S sequences, N frames in all, B shape coefficients):
    names (S,) file names; seq_start (S + 1,) offsets of each sequence's frames; fps (S,);
    frame_index (N,) frame numbers in the BVH file; root_orient (N, 3), trans (N, 3) and
    pose_body (N, 63) axis-angle and metres in our world frame (y up); betas (S, B);
    residual_mm (N,) mean joint error over mapped joints; joint_error_mm (N, 24) (NaN unmapped);
    metadata: JSON string (data, split, stride, counts, command, fit settings).
"""

import argparse
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.mocap.stage import group_by_frames
from slahmr_opt.mocap.targets import (
    BANDAI_DIRECTIONS,
    BANDAI_ROTATIONS,
    BANDAI_TO_SMPL,
    FitSettings,
    check_handedness,
    fit_sequences,
    iter_bandai_archive,
    joint_rotations,
    relative_terms,
    smpl_targets,
)

logger = logging.getLogger(__name__)

DATA_NAME = "Bandai-Namco-Research-Motiondataset-2 (CC BY-NC 4.0, Kobayashi et al. 2023)"
_WORKER_BODY = None


def load_targets(archive: Path, split: str, stride: int, max_files: int | None, seed: int):
    """Joint targets of every file of ``split`` (sorted by name), every ``stride``-th frame.

    Returns:
        names (list of S), frame indices (list of (T_i,)), targets (list of (T_i, 24, 3)),
        joint rotations (list of (T_i, K, 3, 3)), weights (24,), fps (S,).
    """
    items = []
    for motion in tqdm(iter_bandai_archive(archive, split), desc=f"read {split}", mininterval=10):
        targets, weights = smpl_targets(motion)
        check_handedness(targets, motion.source)
        frames = np.arange(0, motion.num_frames, stride)
        rots = joint_rotations(motion)[frames]
        items.append((motion.source, frames, targets[frames], rots, motion.fps))
    items.sort(key=lambda item: item[0])
    if max_files is not None and max_files < len(items):
        keep = np.sort(np.random.default_rng(seed).choice(len(items), max_files, replace=False))
        items = [items[i] for i in keep]
    names, frames, targets, roots, fps = (list(x) for x in zip(*items, strict=True))
    return names, frames, targets, roots, weights, np.asarray(fps)


def _init_worker() -> None:
    global _WORKER_BODY
    torch.set_num_threads(1)
    _WORKER_BODY = load_body_model(BodyConfig())


def _fit_batch(targets, roots, weights: np.ndarray, settings: FitSettings):
    return fit_sequences(_WORKER_BODY, targets, weights, settings, relative_terms(), roots)


def fit_split(targets, roots, weights, settings: FitSettings, batch_frames: int, workers: int):
    """Fit every sequence: batches of about ``batch_frames`` frames over ``workers`` processes.

    Args:
        targets: per sequence (T_i, 24, 3) joint targets. roots: per sequence (T_i, K, 3, 3)
            joint rotation targets. weights: (24,) joint weights.

    Returns:
        One ``BodyFit`` per sequence.
    """
    groups = group_by_frames([len(t) for t in targets], batch_frames)
    fits = [None] * len(targets)
    with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
        jobs = [
            pool.submit(_fit_batch, [targets[i] for i in g], [roots[i] for i in g], weights,
                        settings)
            for g in groups
        ]  # fmt: skip
        for group, job in tqdm(zip(groups, jobs, strict=True), total=len(jobs), desc="fit",
                               mininterval=10):  # fmt: skip
            for i, fit in zip(group, job.result(), strict=True):
                fits[i] = fit
    return fits


def save_cache(out: Path, names, frames, fps, fits, metadata: dict) -> None:
    """Write the cache described in the module docstring."""
    lengths = [len(f) for f in frames]
    cat = lambda key: np.concatenate([getattr(f, key) for f in fits])  # noqa: E731
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        names=np.asarray(names),
        seq_start=np.cumsum([0, *lengths]),
        fps=fps,
        frame_index=np.concatenate(frames),
        root_orient=cat("root_orient").astype(np.float32),
        trans=cat("trans").astype(np.float32),
        pose_body=cat("pose_body").reshape(-1, 63).astype(np.float32),
        betas=np.stack([f.betas for f in fits]).astype(np.float32),
        residual_mm=cat("residual_mm").astype(np.float32),
        joint_error_mm=cat("joint_error_mm").astype(np.float32),
        metadata=json.dumps(metadata),
    )


def prepare(
    archive: Path,
    split: str,
    stride: int,
    out: Path,
    max_files: int | None = None,
    seed: int = 0,
    batch_frames: int = 1500,
    workers: int = 2,
    command: str = "",
) -> dict:
    """Fit one split (every ``stride``-th frame) and write its cache; returns its metadata."""
    # Pose changes between kept frames grow with the stride: keep the smoothing comparable.
    settings = FitSettings(smooth_weight=FitSettings.smooth_weight / stride**2)
    start = time.time()
    names, frames, targets, roots, weights, fps = load_targets(
        archive, split, stride, max_files, seed
    )
    fits = fit_split(targets, roots, weights, settings, batch_frames, workers)
    residual = np.concatenate([f.joint_error_mm for f in fits])
    metadata = {
        "data": DATA_NAME,
        "archive": Path(archive).name,
        "split": split,
        "split_rule": "take number (last number in the file name) ending in 0 -> eval, else train",
        "stride": stride,
        "files": len(names),
        "frames": int(sum(len(f) for f in frames)),
        "joint_table": [asdict(s) for s in BANDAI_TO_SMPL],
        "directions": BANDAI_DIRECTIONS,
        "rotations": [(a, b, w) for a, b, _, w in BANDAI_ROTATIONS],
        "fit_settings": {k: str(v) for k, v in asdict(settings).items()},
        "residual_mm": {
            "mean": float(np.nanmean(residual)),
            "median": float(np.nanmedian(residual)),
            "p95": float(np.nanpercentile(residual, 95)),
        },
        "seconds": round(time.time() - start, 1),
        "command": command,
    }
    save_cache(out, names, frames, fps, fits, metadata)
    logger.info("%s: %d files, %d frames, residual %s mm, %.0f s -> %s", split, metadata["files"],
                metadata["frames"], metadata["residual_mm"], metadata["seconds"], out)  # fmt: skip
    return metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, required=True, help="bandai-namco-2.tar.xz")
    parser.add_argument("--split", choices=("train", "eval"), required=True)
    parser.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    parser.add_argument("--out", type=Path, required=True, help="cache .npz to write")
    parser.add_argument("--max-files", type=int, default=None, help="random subset of files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command = " ".join(["python -m slahmr_priors.pose_gmm.prepare", *(argv or sys.argv[1:])])
    prepare(args.mocap, args.split, args.stride, args.out, args.max_files, args.seed,
            workers=args.workers, command=command)  # fmt: skip


if __name__ == "__main__":
    main()
