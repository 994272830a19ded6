"""Train the pose VAE on body fits of the mocap training split and score it on the held-out split.

    python -m slahmr_priors.pose_vae.train --mocap ../shared/data/mocap/bandai-namco-2.tar.xz \\
        --out priors/pose_vae/pose_vae.pt

Uses the same body-fit caches as the Gaussian-mixture prior
(``slahmr_priors.pose_gmm.prepare``; built when missing). Training files whose take number ends in
5 are held back as a validation set for the loss curve; the evaluation split (take number ending in
0) is only scored at the end, next to the shipped Gaussian-mixture prior on the same poses.
Reproducible: fixed split, sorted files, fixed seed, fixed thread count (CPU).
"""

import argparse
import json
import logging
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from slahmr_priors.data.schedule import one_cycle
from slahmr_priors.pose_gmm.train import DEFAULT_CACHE, MIN_STD, SAMPLE_SIZE, UNOBSERVED_STD
from slahmr_priors.pose_vae.model import PoseVAE
from slahmr_priors.pose_vae.scores import score_priors

logger = logging.getLogger(__name__)

NOISE_AUGMENT = 0.02
"""Radians of noise added to training poses: the body fits do not determine the poorly observed
rotations (hip and knee twists, clavicles) more precisely than this, and their values shift with
the fit settings (the evaluation split is fitted at stride 1, the training split at stride 5); a
VAE trained on clean fits learns those values to 0.3 degrees and ranks held-out poses badly."""


def load_fits(args, split: str, stride: int) -> dict:
    """Cached body fits of one split (``slahmr_priors.pose_gmm.prepare`` layout); fitted when
    missing."""
    path = args.cache_dir / f"{split}_stride{stride}.npz"
    if not path.exists():
        from slahmr_priors.pose_gmm.prepare import prepare  # uses slahmr_opt: only when fitting

        command = " ".join(["python -m slahmr_priors.pose_vae.train", *sys.argv[1:]])
        prepare(args.mocap, split, stride, path, None, args.seed, workers=args.workers,
                command=command)  # fmt: skip
    with np.load(path) as data:
        fits = {k: data[k] for k in data.files}
    fits["metadata"] = json.loads(str(fits["metadata"]))
    logger.info("%s fits: %s (%d frames)", split, path, len(fits["pose_body"]))
    return fits


def validation_frames(fits: dict) -> np.ndarray:
    """(N,) bool: frames of files whose take number (last number in the name) ends in 5."""
    takes = [int(re.findall(r"\d+", Path(str(n)).stem)[-1]) for n in fits["names"]]
    per_file = np.asarray([t % 10 == 5 for t in takes])
    return np.repeat(per_file, np.diff(fits["seq_start"]))


def _neg_elbo(model: PoseVAE, x: torch.Tensor, beta: float, gen=None) -> tuple:
    log_lik, kl = model.elbo_terms(x, gen)
    return (beta * kl - log_lik).mean(), -log_lik.mean(), kl.mean()


@torch.no_grad()
def _validate(model: PoseVAE, x: torch.Tensor, seed: int) -> float:
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    loss = sum(_neg_elbo(model, chunk, 1.0, gen)[0] * len(chunk) for chunk in x.split(8192))
    model.train()
    return float(loss / len(x))


def train(model: PoseVAE, x_train: torch.Tensor, x_val: torch.Tensor, args) -> list[dict]:
    """Adam on the negative ELBO of training poses with ``args.noise_std`` Gaussian noise added
    (KL weight warmed up linearly over ``args.kl_warmup`` epochs, one-cycle learning rate).
    Returns the per-epoch loss curve (validation: clean poses)."""
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(x_train) / args.batch)
    sched = one_cycle(opt, args.lr, steps)
    curve = []
    model.train()
    for epoch in range(args.epochs):
        start = time.time()
        beta = min(1.0, (epoch + 1) / max(args.kl_warmup, 1))
        order = torch.randperm(len(x_train), generator=gen)
        sums = np.zeros(3)
        for idx in order.split(args.batch):
            x = x_train[idx]
            x = x + args.noise_std * torch.randn(x.shape, generator=gen) * model.observed
            loss, rec, kl = _neg_elbo(model, x, beta, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            sums += len(idx) * np.array([loss.item(), rec.item(), kl.item()])
        loss, rec, kl = sums / len(x_train)
        row = {"epoch": epoch + 1, "kl_weight": beta, "train_loss": loss,
               "train_nll_x_given_z": rec, "train_kl": kl,
               "val_neg_elbo": _validate(model, x_val, args.seed),
               "lr": sched.get_last_lr()[0], "seconds": round(time.time() - start, 2)}  # fmt: skip
        curve.append(row)
        logger.info("epoch %3d  loss %.2f (-log p(x|z) %.2f, KL %.2f)  val -ELBO %.2f  %.1f s",
                    row["epoch"], loss, rec, kl, row["val_neg_elbo"], row["seconds"])  # fmt: skip
    model.eval()
    return curve


def plot_curve(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r["train_loss"] for r in curve], label="train loss (noisy poses, KL warm-up)")
    ax.plot(epochs, [r["val_neg_elbo"] for r in curve], label="validation -ELBO (clean poses)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per pose")
    ax.set_title("pose VAE training")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, required=True, help="bandai-namco-2.tar.xz")
    parser.add_argument("--out", type=Path, default=here / "pose_vae.pt", help="weights to write")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--stride", type=int, default=5, help="training frames: every n-th")
    parser.add_argument("--eval-stride", type=int, default=1, help="evaluation frames")
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--kl-warmup", type=int, default=5, help="epochs to ramp the KL weight")
    parser.add_argument("--noise-std", type=float, default=NOISE_AUGMENT,
                        help="radians of Gaussian noise added to the training poses")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: OpenMP threads spin when the cores are shared)",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes for body fitting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    start = time.time()
    fits = load_fits(args, "train", args.stride)
    held_out = load_fits(args, "eval", args.eval_stride)
    poses = torch.from_numpy(fits["pose_body"]).float()
    val = torch.from_numpy(validation_frames(fits))
    x_train, x_val = poses[~val], poses[val]
    observed = x_train.std(0) >= MIN_STD
    logger.info("train %d, validation %d poses; unobserved dims %s", len(x_train), len(x_val),
                torch.nonzero(~observed).flatten().tolist())  # fmt: skip
    model = PoseVAE(observed, x_train.mean(0), x_train.std(0), args.latent, args.hidden,
                    args.layers, unobserved_std=UNOBSERVED_STD)  # fmt: skip
    curve = train(model, x_train, x_val, args)
    train_seconds = time.time() - start
    x_eval = held_out["pose_body"].astype(np.float64)
    frame_file = np.repeat(np.arange(len(held_out["names"])), np.diff(held_out["seq_start"]))
    scores = score_priors(model, x_eval, held_out["betas"][frame_file], x_train.double().numpy(),
                          args.seed)  # fmt: skip
    metadata = {
        "data": fits["metadata"]["data"],
        "split": "trained on the train split only (" + fits["metadata"]["split_rule"] + "), less "
        "its files with take number ending in 5 (validation for the loss curve)",
        "counts": {
            "train_files": fits["metadata"]["files"], "train_stride": args.stride,
            "train_poses": len(x_train), "validation_poses": len(x_val),
            "eval_files": held_out["metadata"]["files"], "eval_stride": args.eval_stride,
            "eval_poses": len(x_eval),
        },
        "model": {**model.config, "unobserved_dims": torch.nonzero(~observed).flatten().tolist(),
                  "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
                  "kl_warmup": args.kl_warmup, "noise_std": args.noise_std, "seed": args.seed,
                  "torch": torch.__version__},
        "pose": "SMPL body pose, 21 joints x axis-angle (radians), root orientation excluded",
        "scores": scores,
        "command": " ".join(["python -m slahmr_priors.pose_vae.train", *(argv or sys.argv[1:])]),
        "train_seconds": round(train_seconds, 1),
    }  # fmt: skip
    model.metadata = metadata
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    curve_path = args.out.with_name("loss_curve.json")
    curve_path.write_text(json.dumps(curve, indent=1))
    plot_curve(curve, curve_path.with_suffix(".png"))
    sample = np.random.default_rng(args.seed).choice(len(x_eval), SAMPLE_SIZE, replace=False)
    np.savez(args.out.with_name("eval_sample.npz"), pose_body=x_eval[np.sort(sample)]
             .astype(np.float32), source=json.dumps(metadata["counts"]))  # fmt: skip
    logger.info("scores: %s", json.dumps(scores, indent=1))
    logger.info("wrote %s in %.0f s (training %.0f s)", args.out, time.time() - start,
                train_seconds)  # fmt: skip


if __name__ == "__main__":
    main()
