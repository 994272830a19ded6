"""Build the bundled example sequence (``slahmr_opt/data/example/``).

A real walk from the evaluation split of the Bandai-Namco motion dataset 2 is fitted with the
built-in body model (ground truth), watched by a hand-held camera that follows the walker, and
written as a user's inputs would be: ``tracks.npz`` (noisy COCO-17 keypoints and regressor-like
per-frame SMPL guesses) and ``cameras.npz`` (a SLAM-like trajectory with unknown scale and drift),
plus ``gt.npz``.

    python scripts/make_example.py --mocap ../shared/data/mocap/bandai-namco-2.tar.xz
"""

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.eval import synth
from slahmr_opt.eval.mocap import fit_body_to_joints, iter_bandai_archive, smpl_targets
from slahmr_opt.inputs.cameras import write_cameras_npz
from slahmr_opt.inputs.track_data import TrackData
from slahmr_opt.inputs.tracks import write_tracks_npz

logger = logging.getLogger("make_example")
OUT = Path(__file__).resolve().parents[1] / "slahmr_opt" / "data" / "example"
COCO_FLIPS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mocap", required=True)
    ap.add_argument("--name", default="walk", help="substring of the BVH file name to use")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--start", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    rng = np.random.default_rng(args.seed)
    motion = next(
        m
        for m in iter_bandai_archive(args.mocap, split="eval")
        if args.name in Path(str(m.source)).name
    )
    targets, weights = smpl_targets(motion)
    targets = targets[args.start : args.start + args.frames]
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    fit = fit_body_to_joints(body, targets, weights)
    logger.info("fitted %s: mean joint residual %.1f mm", motion.source, fit.residual_mm.mean())
    T = len(targets)
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    betas = f64(fit.betas)[None].expand(T, -1)
    out = body(betas, f64(fit.root_orient), f64(fit.pose_body), f64(fit.trans))
    kp_w = body.keypoints(out, "coco17")
    s = synth.SynthSettings(camera="tracking")
    R, t = synth.camera_path(s.camera, out.joints[:, 0].numpy(), s, rng)
    cams_true = synth.cameras_from_arrays(R, t, s.image_size)
    kp2d, vis = synth.detect_keypoints(
        kp_w[None], f64(R), f64(t), cams_true.intrins.double(), s.image_size, s, rng, COCO_FLIPS
    )
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    pelvis0 = body(
        torch.zeros(1, 10, dtype=torch.float64),
        zeros,
        torch.zeros(1, 21, 3, dtype=torch.float64),
        zeros,
    ).joints[0, 0]
    guess = synth.regressor_guess(
        f64(fit.root_orient)[None],
        f64(fit.pose_body)[None],
        out.joints[None, :, 0],
        pelvis0,
        f64(R),
        f64(t),
        vis,
        s,
        rng,
    )
    R_slam, t_slam = synth.slam_like(R, t, s, rng)
    cams_slam = synth.cameras_from_arrays(R_slam, t_slam, s.image_size)
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    tracks = TrackData(
        kp2d=kp2d,
        kp_format="coco17",
        vis_mask=vis,
        track_ids=["001"],
        fps=float(motion.fps),
        smpl_guess=guess,
        image_size=s.image_size,
    )
    write_tracks_npz(dest / "tracks.npz", tracks, overwrite=True)
    write_cameras_npz(dest / "cameras.npz", cams_slam, overwrite=True)
    np.savez(
        dest / "gt.npz",
        joints=out.joints[None].float().numpy(),
        valid=np.ones((1, T), bool),
        track_ids=np.array(["001"]),
        alpha=np.array(s.alpha_true),
        trans=fit.trans[None],
        root_orient=fit.root_orient[None],
        pose_body=fit.pose_body[None].reshape(1, T, 63),
        betas=fit.betas[None],
        cam_R=R.astype(np.float32),
        cam_t=t.astype(np.float32),
    )
    meta = {
        "source": str(motion.source),
        "frames": [args.start, args.start + T],
        "fit_residual_mm": float(fit.residual_mm.mean()),
        "seed": args.seed,
        "camera": s.camera,
        "alpha_true": s.alpha_true,
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=2))
    logger.info("wrote %s (%d frames, %d detected)", dest, T, int(vis.sum()))


if __name__ == "__main__":
    main()
