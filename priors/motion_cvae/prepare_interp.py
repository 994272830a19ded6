"""Stop-gap training states: every-frame fits where they exist, else interpolated stride-5 fits.

    python -m slahmr_priors.motion_cvae.prepare_interp \\
        --stride-fits /tmp/slahmr_opt_mocap_fits/train_stride5.npz \\
        --shards /tmp/slahmr_opt_priors_data/fits_train_shards \\
        --out /tmp/slahmr_opt_priors_data/states_train_interp.npz --max-files 800

Used because the every-frame training build (``python -m slahmr_priors.data.build --splits train``)
had not finished when the motion prior had to be trained, and its finished shards, sorted by file
name, held only the first three of the ten actions. The pose priors' training fits of every
training file at every 5th frame (``slahmr_priors.pose_gmm.prepare``, same fitter) are
interpolated to every frame by natural cubic splines (translation; root and joint rotations as
sign-aligned quaternions, renormalised), the body model gives the joints, and
``slahmr_priors.data.build`` derives and writes the states (its layout; metadata names the source
per file). Training split only.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.spatial.transform import Rotation

from slahmr_priors.data import build

logger = logging.getLogger(__name__)


def _quat_spline(aa: np.ndarray, t_src: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """(T_new, K, 3) axis-angle interpolated from (T, K, 3) by cubic splines of quaternions."""
    T, K, _ = aa.shape
    quat = Rotation.from_rotvec(aa.reshape(-1, 3)).as_quat().reshape(T, K, 4)
    for t in range(1, T):  # one hemisphere along time
        flip = (quat[t] * quat[t - 1]).sum(-1) < 0
        quat[t, flip] *= -1
    q = CubicSpline(t_src, quat, axis=0, bc_type="natural")(t_new)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return Rotation.from_quat(q.reshape(-1, 4)).as_rotvec().reshape(len(t_new), K, 3)


def interpolate_sequence(fits: dict, s: int) -> dict | None:
    """Every-frame fit of sequence ``s`` of a strided cache (None when < 4 samples)."""
    a, b = fits["seq_start"][s], fits["seq_start"][s + 1]
    frames = fits["frame_index"][a:b].astype(np.float64)
    if b - a < 4:
        return None
    t_new = np.arange(int(frames[0]), int(frames[-1]) + 1, dtype=np.float64)
    trans = CubicSpline(frames, fits["trans"][a:b].astype(np.float64), axis=0,
                        bc_type="natural")(t_new)  # fmt: skip
    root = _quat_spline(fits["root_orient"][a:b, None].astype(np.float64), frames, t_new)[:, 0]
    pose = _quat_spline(fits["pose_body"][a:b].reshape(-1, 21, 3).astype(np.float64), frames,
                        t_new).reshape(-1, 63)  # fmt: skip
    return {"trans": trans, "root_orient": root, "pose_body": pose,
            "frame_index": t_new.astype(np.int64),
            "residual_mm": np.interp(t_new, frames, fits["residual_mm"][a:b])}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride-fits", type=Path, required=True, help="train_stride5.npz")
    parser.add_argument("--shards", type=Path, default=None, help="every-frame fit shards")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-files", type=int, default=None, help="random subset (seed 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from slahmr_opt.body import BodyConfig, load_body_model

    start = time.time()
    with np.load(args.stride_fits) as data:
        strided = {k: data[k] for k in data.files}
    if json.loads(str(strided["metadata"]))["split"] != "train":
        raise SystemExit(f"{args.stride_fits} is not the training split")
    real = {}
    for path in sorted(args.shards.glob("shard_*.npz")) if args.shards else []:
        shard = build._load_shard(path)
        for s, name in enumerate(shard["names"]):
            a, b = shard["seq_start"][s], shard["seq_start"][s + 1]
            keys = ("trans", "root_orient", "pose_body", "frame_index", "residual_mm")
            real[str(name)] = {k: shard[k][a:b] for k in keys}
    picks = np.arange(len(strided["names"]))
    if args.max_files is not None:
        rng = np.random.default_rng(0)
        picks = np.sort(rng.choice(len(picks), min(args.max_files, len(picks)), replace=False))
    seqs, names, fps, betas, source = [], [], [], [], []
    for s in picks:
        name = str(strided["names"][s])
        seq = real.get(name) or interpolate_sequence(strided, s)
        if seq is None:
            continue
        seqs.append(seq)
        names.append(name)
        fps.append(strided["fps"][s])
        betas.append(strided["betas"][s])
        source.append("every-frame fit" if name in real else "stride-5 fit, cubic-interpolated")
    fits = {k: np.concatenate([q[k] for q in seqs]) for k in seqs[0]}
    fits.update(names=np.asarray(names), fps=np.asarray(fps), betas=np.asarray(betas),
                seq_start=np.cumsum([0, *[len(q["trans"]) for q in seqs]]))  # fmt: skip
    logger.info("%d sequences (%d every-frame), %d frames", len(names),
                sum(n in real for n in names), len(fits["trans"]))  # fmt: skip
    body = load_body_model(BodyConfig()).double()
    states = build.derive_split(fits, build.body_joints(fits, body))
    meta = json.loads(str(strided["metadata"]))
    metadata = {
        "data": meta["data"], "split": "train", "split_rule": meta["split_rule"],
        "files": len(names), "frames": len(fits["trans"]), "fps": 30.0,
        "every_frame_files": int(sum(n in real for n in names)),
        "source": "every-frame fits of finished build shards where present, else stride-5 fits "
        "(priors.pose_gmm.prepare) interpolated by cubic splines",
        "source_per_file": source,
        "contact_rate": states["contacts"].mean(0).round(4).tolist(),
        "seconds": round(time.time() - start, 1),
        "command": "python -m slahmr_priors.motion_cvae.prepare_interp "
        + " ".join(argv or sys.argv[1:]),
    }  # fmt: skip
    build.save_states(args.out, fits, states, metadata)
    logger.info("wrote %s (%.0f s)", args.out, time.time() - start)


if __name__ == "__main__":
    main()
