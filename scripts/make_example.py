"""Build the bundled example sequence (``slahmr_opt/data/example/``).

A real walk from the evaluation split of the Bandai-Namco motion dataset 2 is fitted with the
built-in body model (ground truth), watched by a hand-held camera that follows the walker, and
written as a user's inputs would be: ``tracks.npz`` (noisy COCO-17 keypoints and regressor-like
per-frame SMPL guesses), ``cameras.npz`` (a SLAM-like trajectory with unknown scale and drift) and
``points.npz`` (a SLAM-like map of the scene, ``slahmr_opt.synth.points``), plus ``gt.npz``
(written by ``slahmr_opt.synth.benchmark.write_sequence``, as the benchmark's sequences are).

    python scripts/make_example.py --mocap ../shared/data/mocap/bandai-namco-2.tar.xz
"""

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.mocap.targets import fit_body_to_joints, iter_bandai_archive, smpl_targets
from slahmr_opt.synth import observe as synth
from slahmr_opt.synth.benchmark import write_sequence

logger = logging.getLogger("make_example")
OUT = Path(__file__).resolve().parents[1] / "slahmr_opt" / "data" / "example"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mocap", required=True)
    ap.add_argument("--name", default="walk_normal", help="substring of the BVH file name to use")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--start", type=int, default=0)
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
    s = synth.SynthSettings(camera="tracking")
    scene = synth.observe_bodies(
        body,
        f64(fit.root_orient)[None],
        f64(fit.trans)[None],
        f64(fit.pose_body)[None],
        f64(fit.betas)[None],
        s,
        rng,
        fps=float(motion.fps),
    )
    bodies = {
        "root_orient": fit.root_orient[None],
        "trans": fit.trans[None],
        "pose_body": fit.pose_body[None],
        "betas": fit.betas[None],
    }
    meta = {
        "source": str(motion.source),
        "frames": [args.start, args.start + T],
        "fit_residual_mm": float(fit.residual_mm.mean()),
        "seed": args.seed,
        "camera": s.camera,
        "alpha_true": s.alpha_true,
    }
    dest = write_sequence(Path(args.out), body, scene, bodies, s, meta,
                          np.random.default_rng([args.seed, 1]))  # fmt: skip
    obs = scene.obs
    logger.info("wrote %s (%d frames, %d detected)", dest, T, int(obs.vis_mask.sum()))


if __name__ == "__main__":
    main()
