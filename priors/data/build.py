"""Build the training (and held-out evaluation) data of the learned priors from Bandai-Namco mocap.

    python -m slahmr_priors.data.build --mocap ../shared/data/mocap/bandai-namco-2.tar.xz \\
        --out /tmp/slahmr_opt_priors_data

For each split (``train``, ``eval``; the rule is ``slahmr_opt.mocap.targets.split_of``) it

1. fits the built-in body to every frame of every file (``slahmr_priors.pose_gmm.prepare``: the BVH
   reader, the SMPL joint mapping and ``fit_sequences``), after resampling files whose frame rate
   is not ``--fps`` (Bandai-Namco is 30 fps: none is), and caches the fits in
   ``OUT/fits_<split>.npz`` (prepare's layout; an existing cache of the same split, every frame,
   is reused);
2. runs the body model on the fits and derives the per-frame states (``slahmr_priors.data.states``),
   written to ``OUT/states_<split>.npz`` (layout in ``save_states``; no pickled objects).

Progress goes to the log (stderr). Like prepare.py, this data preparation uses slahmr_opt.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from slahmr_priors.contacts import CONTACT_HEIGHT, CONTACT_JOINTS, CONTACT_SPEED
from slahmr_priors.data import states as st
from slahmr_priors.pose_gmm import prepare

logger = logging.getLogger(__name__)

SPLITS = ("train", "eval")


def _load_shard(path: Path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def fit_split_cache(
    archive: Path, split: str, out: Path, fps: float, workers: int, max_files: int | None,
    solver: str, command: str, shard_files: int = 100,
) -> dict:  # fmt: skip
    """Fit every frame of ``split`` (resampled to ``fps``) and write prepare's cache to ``out``.

    Files are fitted in shards of ``shard_files`` (sorted by name), each saved in
    ``<out stem>_shards/`` as it finishes, so that a killed build resumes where it stopped.

    Returns:
        The cache's metadata.
    """
    from slahmr_opt.mocap.targets import FitSettings

    start = time.time()
    names, frames, targets, rots, weights, src_fps = prepare.load_targets(
        archive, split, 1, max_files, seed=0
    )
    resampled = [i for i, f in enumerate(src_fps) if abs(f - fps) > 1e-6]
    for i in resampled:
        targets[i] = st.resample(targets[i], src_fps[i], fps)
        rots[i] = st.resample_rotations(rots[i], src_fps[i], fps)
        frames[i] = np.arange(len(targets[i]))
    total = sum(map(len, frames))
    logger.info("%s: %d files, %d frames (%d resampled to %g fps); fitting", split, len(names),
                total, len(resampled), fps)  # fmt: skip
    settings = FitSettings(solver=solver)
    shard_dir = out.parent / f"{out.stem}_shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    fits, done = [], 0
    for k, a in enumerate(range(0, len(names), shard_files)):
        ids = range(a, min(a + shard_files, len(names)))
        path = shard_dir / f"shard_{k:03d}.npz"
        shard = _load_shard(path) if path.exists() else None
        if shard is None or list(shard["names"]) != [names[i] for i in ids]:
            t0 = time.time()
            part = prepare.fit_split([targets[i] for i in ids], [rots[i] for i in ids], weights,
                                     settings, 1500, workers)  # fmt: skip
            ids_names, ids_frames = [names[i] for i in ids], [frames[i] for i in ids]
            meta = {"seconds": time.time() - t0}
            prepare.save_cache(path, ids_names, ids_frames, np.full(len(ids), fps), part, meta)
            shard = _load_shard(path)
        fits.append(shard)
        done += len(shard["trans"])
        elapsed = time.time() - start
        logger.info("%s: shard %d done, %d / %d frames, %.0f s elapsed", split, k, done, total,
                    elapsed)  # fmt: skip
    residual = np.concatenate([f["joint_error_mm"] for f in fits])
    metadata = {
        "data": prepare.DATA_NAME, "archive": Path(archive).name, "split": split, "stride": 1,
        "files": len(names), "frames": int(total), "fps": fps,
        "source_fps": sorted({float(f) for f in src_fps}), "resampled_files": len(resampled),
        "fit_settings": {k: str(v) for k, v in vars(settings).items()},
        "residual_mm": {"mean": float(np.nanmean(residual)),
                        "median": float(np.nanmedian(residual)),
                        "p95": float(np.nanpercentile(residual, 95))},
        "seconds": round(time.time() - start, 1), "command": command,
    }  # fmt: skip
    merged = {k: np.concatenate([f[k] for f in fits]) for k in
              ("names", "fps", "frame_index", "root_orient", "trans", "pose_body", "betas",
               "residual_mm", "joint_error_mm")}  # fmt: skip
    lengths = np.concatenate([np.diff(f["seq_start"]) for f in fits])
    np.savez_compressed(out, seq_start=np.cumsum([0, *lengths]), metadata=json.dumps(metadata),
                        **merged)  # fmt: skip
    return metadata


def _usable_cache(path: Path, split: str, fps: float, max_files: int | None) -> bool:
    if not path.exists():
        return False
    with np.load(path) as data:
        meta = json.loads(str(data["metadata"]))
        fps_ok = bool(np.allclose(data["fps"], fps))
    return (
        meta.get("split") == split
        and meta.get("stride") == 1
        and fps_ok
        and (max_files is None or meta.get("files") == max_files)
    )


def body_joints(fits: dict, body, chunk: int = 4096) -> np.ndarray:
    """(N, 22, 3) world joints of the cached fits (body model in float64, no gradients)."""
    seq = np.searchsorted(fits["seq_start"], np.arange(len(fits["trans"])), side="right") - 1
    out = []
    as64 = lambda key, rows: torch.from_numpy(fits[key][rows]).double()  # noqa: E731
    with torch.no_grad():
        for a in range(0, len(seq), chunk):
            rows = np.arange(a, min(a + chunk, len(seq)))
            res = body(betas=torch.from_numpy(fits["betas"][seq[rows]]).double(),
                       global_orient=as64("root_orient", rows),
                       body_pose=as64("pose_body", rows).reshape(-1, 21, 3),
                       transl=as64("trans", rows))  # fmt: skip
            out.append(res.joints[:, : st.NUM_JOINTS].numpy())
    return np.concatenate(out)


def derive_split(fits: dict, joints: np.ndarray) -> dict[str, np.ndarray]:
    """States of every sequence of a fits cache, concatenated (``save_states`` layout)."""
    parts = []
    starts = fits["seq_start"]
    for s, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True)):
        parts.append(st.derive_states(
            fits["trans"][a:b].astype(np.float64), fits["root_orient"][a:b].astype(np.float64),
            fits["pose_body"][a:b].astype(np.float64), joints[a:b], float(fits["fps"][s]),
        ))  # fmt: skip
        if s % 200 == 0:
            logger.info("states: %d / %d sequences", s, len(starts) - 1)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def save_states(path: Path, fits: dict, states: dict, metadata: dict) -> None:
    """Write the states file (S sequences, N frames, B betas, C contact joints).

    Layout: ``names`` (S,) str; ``seq_start`` (S + 1,) int64 frame offsets; ``fps`` (S,);
    ``betas`` (S, B); ``frame_index`` (N,) frame in the (resampled) sequence; ``residual_mm``
    (N,) fit error; every key of ``states.derive_states`` (N, ...) float32 (``contacts`` bool);
    ``contact_joints`` (C,) SMPL joint ids; ``metadata`` JSON string.
    """
    arrays = {k: (v if v.dtype == bool else v.astype(np.float32)) for k, v in states.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, names=fits["names"], seq_start=fits["seq_start"].astype(np.int64), fps=fits["fps"],
        betas=fits["betas"], frame_index=fits["frame_index"], residual_mm=fits["residual_mm"],
        contact_joints=np.array(CONTACT_JOINTS), metadata=json.dumps(metadata), **arrays,
    )  # fmt: skip


def build(archive: Path, out: Path, splits=SPLITS, fps: float = 30.0, workers: int = 2,
          max_files: int | None = None, solver: str = "direct", command: str = "",
          shard_files: int = 100) -> dict:  # fmt: skip
    """Fits and states of each split under ``out``; returns each split's metadata."""
    from slahmr_opt.body import BodyConfig, load_body_model

    body = load_body_model(BodyConfig()).double()
    summary = {}
    for split in splits:
        start = time.time()
        fits_path = out / f"fits_{split}.npz"
        if _usable_cache(fits_path, split, fps, max_files):
            logger.info("%s: reusing %s", split, fits_path)
        else:
            fit_split_cache(archive, split, fits_path, fps, workers, max_files, solver, command,
                            shard_files)  # fmt: skip
        with np.load(fits_path) as data:
            fits = {k: data[k] for k in data.files}
        fit_meta = json.loads(str(fits["metadata"]))
        states = derive_split(fits, body_joints(fits, body))
        contacts = states["contacts"]
        metadata = {
            "data": prepare.DATA_NAME, "split": split,
            "split_rule": "take number (last number in the file name) ending in 0 -> eval, "
                          "else train",
            "files": len(fits["names"]), "frames": len(fits["trans"]), "fps": fps,
            "fit": {k: fit_meta.get(k) for k in ("residual_mm", "seconds", "fit_settings",
                                                  "command", "source_fps")},
            "contact_joints": list(CONTACT_JOINTS),
            "contact_height_m": CONTACT_HEIGHT.tolist(),
            "contact_speed_m_s": CONTACT_SPEED,
            "contact_rate": contacts.mean(0).round(4).tolist(),
            "states_seconds": round(time.time() - start, 1), "command": command,
        }  # fmt: skip
        save_states(out / f"states_{split}.npz", fits, states, metadata)
        logger.info("%s: %s -> %s", split, {k: metadata[k] for k in ("files", "frames")},
                    out / f"states_{split}.npz")  # fmt: skip
        summary[split] = metadata
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, required=True, help="bandai-namco-2.tar.xz")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the states")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-files", type=int, default=None, help="random subset (tests)")
    parser.add_argument(
        "--solver",
        choices=("direct", "lm", "lbfgs"),
        default="direct",
        help="body fit solver (slahmr_opt.mocap.fit.FitSettings.solver)",
    )
    parser.add_argument(
        "--shard-files",
        type=int,
        default=100,
        help="files per saved shard of fits (a killed build resumes)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command = " ".join(["python -m slahmr_priors.data.build", *(argv or sys.argv[1:])])
    build(args.mocap, args.out, args.splits, args.fps, args.workers, args.max_files,
          args.solver, command, args.shard_files)  # fmt: skip


if __name__ == "__main__":
    main()
