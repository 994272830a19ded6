"""Train the keypoint regressor on the mocap training split seen by random synthetic cameras.

    python -m slahmr_priors.regressor.train --data /tmp/slahmr_opt_priors_data \\
        --out priors/regressor/regressor.pt

``--data`` holds ``states_{train,eval}.npz`` and ``keypoints_{train,eval}.npz``
(``python -m slahmr_priors.data.build`` then ``python -m slahmr_priors.data.keypoints``).
Training files whose take number ends in 5 are held back for the validation curve; the evaluation
split (take number ending in 0) is scored only at the end, through this module's own camera
generator (the development benchmark, a different generator, is the real test). Reproducible: fixed
seeds, fixed thread count.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform
from torch.nn.functional import binary_cross_entropy

from slahmr_priors.data.schedule import one_cycle
from slahmr_priors.motion_cvae.state import axis_angle_to_matrix
from slahmr_priors.regressor.data import MotionSet, load_motion
from slahmr_priors.regressor.features import FPS
from slahmr_priors.regressor.model import Regressor, RegressorOutput
from slahmr_priors.regressor.synth import mirror, observe, reverse

logger = logging.getLogger(__name__)

#: SMPL parents of body joints 0..21.
PARENTS = torch.tensor([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19])
WEIGHTS = {"root": 1.0, "pose": 1.0, "joints": 5.0, "joints_c": 5.0, "up": 1.0, "vel": 0.5,
           "contact": 0.2, "betas": 0.05}  # fmt: skip
"""Loss weights (rotation-matrix entries, metres, m/s, nats, shape units): joints errors count
most, being what the metrics measure."""
LENGTHS = (32, 48, 64, 96, 128)


def local_joints(pose: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """(B, L, 22, 3) joints relative to the pelvis in the body frame (forward kinematics).

    Args:
        pose: (B, L, 21, 3, 3) body joint rotations; rest: (B, 24, 3) rest joints of the shape.
    """
    B, L = pose.shape[:2]
    eye = torch.eye(3).expand(B, L, 1, 3, 3)
    rots = torch.cat([eye, pose], 2).reshape(B * L, 22, 3, 3)
    joints = rest[:, None, :22].expand(B, L, 22, 3).reshape(B * L, 22, 3)
    posed, _ = batch_rigid_transform(rots, joints, PARENTS)
    posed = posed.reshape(B, L, 22, 3)
    return posed - posed[:, :, :1]


def losses(out: RegressorOutput, tg: dict) -> dict[str, torch.Tensor]:
    """Per-term mean losses of a batch (see ``WEIGHTS``)."""
    pose_true = axis_angle_to_matrix(tg["pose"])
    local = local_joints(out.pose, tg["rest"])
    joints_c = (out.root_c[:, :, None] @ local[..., None])[..., 0]
    true_c = (tg["root_c"][:, :, None] @ tg["local"][..., None])[..., 0]
    betas = tg["betas"][:, None].expand_as(out.betas)
    return {
        "root": (out.root_c - tg["root_c"]).abs().mean(),
        "pose": (out.pose - pose_true).abs().mean(),
        "joints": (local - tg["local"]).norm(dim=-1).mean(),
        "joints_c": (joints_c - true_c).norm(dim=-1).mean(),
        "up": (out.up_c - tg["up_c"]).abs().mean(),
        "vel": (out.vel_h - tg["vel_h"]).abs().mean(),
        "contact": binary_cross_entropy(out.contact.clamp(1e-6, 1 - 1e-6), tg["contact"]),
        "betas": (out.betas - betas).abs().mean(),
    }


def batch(data: MotionSet, size: int, length: int, rng: np.random.Generator,
          gen: torch.Generator, augment: bool = True):  # fmt: skip
    """Features and targets of ``size`` random windows (mirrored half the time, reversed 15%)."""
    w = data.sample(size, length, rng)
    if augment:
        w = mirror(w, torch.rand(size, generator=gen) < 0.5)
        w = reverse(w, torch.rand(size, generator=gen) < 0.15)
    return observe(w, gen, FPS)


def feature_stats(data: MotionSet, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    feats = torch.cat([batch(data, 64, 64, rng, gen)[0].flatten(0, 1) for _ in range(8)])
    return feats.mean(0), feats.std(0).clamp(min=1e-3)


@torch.no_grad()
def evaluate(model: Regressor, data: MotionSet, seed: int, batches: int = 20) -> dict:
    """Scores on fixed synthetic views of ``data`` (no augmentation), means over frames.

    ``mpjpe_local_mm``: joints relative to the pelvis in the body frame (the pose alone);
    ``mpjpe_cam_mm``: the same turned by the predicted camera-frame root (pose and facing);
    ``root_deg`` / ``facing_off45_pct``: root orientation error and frames whose forward axis
    is more than 45 degrees off; ``joint_rot_deg``: body joint rotation error, mean over joints
    and frames, and ``worst_joint_rot_deg`` the largest of the joints' means (a joint twisted
    half round about its bone keeps the positions right and shows only here); ``up_deg``;
    ``vel_m_s``; ``contact_acc``; plus the losses.
    """
    model.eval()
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    for _ in range(batches):
        feats, tg = batch(data, 32, 64, rng, gen, augment=False)
        out = model(feats)
        local = local_joints(out.pose, tg["rest"])
        rel = out.root_c.transpose(-1, -2) @ tg["root_c"]
        cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
        fwd = (out.root_c[..., :, 2] * tg["root_c"][..., :, 2]).sum(-1).clamp(-1, 1)
        joints_c = (out.root_c[:, :, None] @ local[..., None])[..., 0]
        true_c = (tg["root_c"][:, :, None] @ tg["local"][..., None])[..., 0]
        rel_pose = out.pose.transpose(-1, -2) @ axis_angle_to_matrix(tg["pose"])
        cos_pose = ((rel_pose.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
        joint_deg = torch.rad2deg(torch.arccos(cos_pose)).flatten(0, 1).mean(0)  # (21,)
        terms = {
            "mpjpe_local_mm": 1000 * (local - tg["local"]).norm(dim=-1).mean(),
            "mpjpe_cam_mm": 1000 * (joints_c - true_c).norm(dim=-1).mean(),
            "root_deg": torch.rad2deg(torch.arccos(cos)).mean(),
            "facing_off45_pct": 100 * (torch.rad2deg(torch.arccos(fwd)) > 45).float().mean(),
            "joint_rot_deg": joint_deg.mean(),
            "worst_joint_rot_deg": joint_deg.max(),
            "up_deg": torch.rad2deg(
                torch.arccos((out.up_c * tg["up_c"]).sum(-1).clamp(-1, 1))
            ).mean(),
            "vel_m_s": (out.vel_h - tg["vel_h"]).norm(dim=-1).mean(),
            "contact_acc": ((out.contact > 0.5) == (tg["contact"] > 0.5)).float().mean(),
            **{f"loss_{k}": v for k, v in losses(out, tg).items()},
        }
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) / batches
    model.train()
    return {k: round(v, 4) for k, v in sums.items()}


def train(model: Regressor, data: MotionSet, val: MotionSet, args) -> list[dict]:
    """AdamW with a one-cycle learning rate over ``args.steps`` batches; returns the curve."""
    rng, gen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = one_cycle(opt, args.lr, args.steps)
    curve, running, start = [], {}, time.time()
    model.train()
    for step in range(1, args.steps + 1):
        length = int(rng.choice(LENGTHS))
        feats, tg = batch(data, max(8, args.batch * 64 // length), length, rng, gen)
        terms = losses(model(feats), tg)
        loss = sum(WEIGHTS[k] * v for k, v in terms.items())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        for k, v in terms.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if step % args.log_every == 0 or step == args.steps:
            n = args.log_every if step % args.log_every == 0 else step % args.log_every
            scores = evaluate(model, val, args.seed, 4)
            row = {"step": step, "seconds": round(time.time() - start, 1),
                   "lr": sched.get_last_lr()[0],
                   **{f"train_{k}": round(v / n, 5) for k, v in running.items()},
                   **{f"val_{k}": v for k, v in scores.items()}}  # fmt: skip
            running = {}
            curve.append(row)
            logger.info("step %5d  %.0f s  train joints %.1f mm  val local %.1f mm, cam %.1f mm, "
                        "facing off %.1f %%, vel %.3f m/s", step, row["seconds"],
                        1000 * row["train_joints"], row["val_mpjpe_local_mm"],
                        row["val_mpjpe_cam_mm"], row["val_facing_off45_pct"],
                        row["val_vel_m_s"])  # fmt: skip
    model.eval()
    return curve


def plot_curve(curve: list[dict], path: Path) -> None:
    """Training and validation joint errors as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [1000 * r["train_joints"] for r in curve], label="train, local joints")
    ax.plot(steps, [r["val_mpjpe_local_mm"] for r in curve], label="validation, local joints")
    ax.plot(steps, [r["val_mpjpe_cam_mm"] for r in curve], label="validation, camera frame")
    ax.set_xlabel("step")
    ax.set_ylabel("mean joint error, mm")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("keypoint regressor training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of states/keypoints")
    parser.add_argument("--out", type=Path, default=here / "regressor.pt")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32, help="windows of 64 frames per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def _take(name: str) -> int:
    return int(Path(name).stem.rsplit("_", 1)[-1])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    start = time.time()
    data = load_motion(args.data, "train", lambda n: _take(n) % 10 not in (0, 5))
    val = load_motion(args.data, "train", lambda n: _take(n) % 10 == 5)
    logger.info("%d training files (%d frames), %d validation files", len(data.names),
                data.seq_start[-1], len(val.names))  # fmt: skip
    mean, std = feature_stats(data, args.seed)
    model = Regressor(width=args.width, feature_mean=mean, feature_std=std)
    logger.info("%d parameters, receptive field %d frames",
                sum(p.numel() for p in model.parameters()), model.receptive_field)  # fmt: skip
    curve = train(model, data, val, args)
    train_seconds = time.time() - start
    held_out = load_motion(args.data, "eval")
    scores = evaluate(model, held_out, args.seed + 1, batches=40)
    logger.info("evaluation split: %s", json.dumps(scores))
    model.metadata = {
        "data": "Bandai-Namco-Research-Motiondataset-2 (CC BY-NC 4.0, Kobayashi et al. 2023)",
        "split": "trained on the training split (take number not ending in 0) less its files "
                 "with take number ending in 5 (validation curve); scored on the evaluation "
                 "split (take number ending in 0)",
        "counts": {"train_files": len(data.names), "train_frames": int(data.seq_start[-1]),
                   "validation_files": len(val.names), "eval_files": len(held_out.names)},
        "model": {**model.config, "steps": args.steps, "batch": args.batch, "lr": args.lr,
                  "seed": args.seed, "weights": WEIGHTS, "torch": torch.__version__,
                  "threads": args.threads},
        "scores_eval_split": scores,
        "command": " ".join(["python -m slahmr_priors.regressor.train", *(argv or sys.argv[1:])]),
        "train_seconds": round(train_seconds, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    args.out.with_name("loss_curve.json").write_text(json.dumps(curve, indent=1))
    plot_curve(curve, args.out.with_name("loss_curve.png"))
    args.out.with_name("scores.json").write_text(json.dumps(model.metadata, indent=1))
    logger.info("wrote %s (%.0f s)", args.out, time.time() - start)


if __name__ == "__main__":
    main()
