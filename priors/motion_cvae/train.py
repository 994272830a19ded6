"""Train the CVAE motion prior on the mocap training split and score it on the held-out split.

    python -m slahmr_priors.motion_cvae.train \\
        --train /tmp/slahmr_opt_priors_data/states_train.npz \\
        --eval /tmp/slahmr_opt_priors_data/states_eval.npz --out priors/motion_cvae/motion_cvae.pt

State files come from ``python -m slahmr_priors.data.build`` (``priors/data/README.md``).
Training files whose take number ends in 5 are held back as a validation set for the loss curve;
the evaluation split (take number ending in 0) is only scored at the end. Reproducible: sorted
files, fixed seed, fixed thread count (CPU).
"""

import argparse
import json
import logging
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import binary_cross_entropy_with_logits

from slahmr_priors.data.schedule import one_cycle
from slahmr_priors.motion_cvae.data import (
    AUGMENTATIONS,
    TransitionSet,
    load_motions,
    load_transitions,
    take_numbers,
    write_sample,
)
from slahmr_priors.motion_cvae.model import MotionCVAE
from slahmr_priors.motion_cvae.scores import perturbation_scores, score
from slahmr_priors.motion_cvae.state import PARTS, STATE_DIM

logger = logging.getLogger(__name__)

MIN_STD = {"root_rot6": 0.002, "root_vel": 0.06, "pose_body": 0.002, "joints": 0.002,
           "joints_vel": 0.06}  # fmt: skip
"""Floor of the decoder's spread per state part (state units: rad, rad/s, m, m/s): about the
fits' own frame-to-frame noise (2 mm, 2 mrad; velocities are differences times 30 fps). Without
it, dimensions the fits never move (toe rotations) or fix exactly (a frame's velocity is the
difference of two frames' joints) get spreads near 0 and stiff, ill-conditioned factors."""
STATE_STD_FLOOR = 0.01


def part_vector(values: dict[str, float]) -> torch.Tensor:
    """(D,) vector holding ``values[part]`` on each part's slice of the state."""
    out = torch.empty(STATE_DIM)
    for name, sl in PARTS.items():
        out[sl] = values[name]
    return out


def build_model(train: TransitionSet, args) -> MotionCVAE:
    """A fresh model with normalisation statistics of the training transitions."""
    floor = part_vector(MIN_STD)
    delta = train.cur - train.prev
    return MotionCVAE(train.prev.mean(0), train.prev.std(0).clamp_min(STATE_STD_FLOOR),
                      delta.mean(0), torch.maximum(delta.std(0), floor), floor,
                      latent=args.latent, hidden=args.hidden, layers=args.layers)  # fmt: skip


def losses(model: MotionCVAE, batch: TransitionSet, gen: torch.Generator | None,
           free_bits: float = 0.0) -> dict:  # fmt: skip
    """Per-batch means: ``nll_x`` (-log p(x | p, z), one sample of q), ``kl``, ``bce`` (nats),
    and ``kl_free_bits``: the KL with each latent dimension's batch mean raised to at least
    ``free_bits`` nats (the training objective's KL term)."""
    mu, logvar = model.posterior(batch.prev, batch.cur)
    eps = torch.randn(mu.shape, generator=gen)
    z = mu + (0.5 * logvar).exp() * eps
    nll_x = -model.log_likelihood(batch.prev, batch.cur, z)
    kl_dims = model.kl_per_dim(batch.prev, mu, logvar)
    kl = kl_dims.sum(-1)
    logits = model.decode(batch.prev, z)[1]
    bce = binary_cross_entropy_with_logits(logits, batch.contacts, reduction="none").sum(-1)
    return {
        "nll_x": nll_x.mean(),
        "kl": kl.mean(),
        "bce": bce.mean(),
        "kl_free_bits": kl_dims.mean(0).clamp_min(free_bits).sum(),
    }


@torch.no_grad()
def _validate(model: MotionCVAE, data: TransitionSet, seed: int) -> dict:
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums = {"nll_x": 0.0, "kl": 0.0, "bce": 0.0}
    for idx in torch.arange(len(data.prev)).split(8192):
        terms = losses(model, data.subset(idx), gen)
        for k in sums:
            sums[k] += float(terms[k]) * len(idx)
    model.train()
    out = {k: v / len(data.prev) for k, v in sums.items()}
    return {"val_neg_elbo": out["nll_x"] + out["kl"], "val_kl": out["kl"], "val_bce": out["bce"]}


def train(model: MotionCVAE, data: TransitionSet, val: TransitionSet, args) -> list[dict]:
    """Adam on ``-log p(x | p, z) + beta KL + contact BCE`` (beta warmed up linearly from 0 to 1
    over ``args.kl_warmup`` epochs, one-cycle learning rate). Returns the per-epoch curve."""
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(data.prev) / args.batch)
    sched = one_cycle(opt, args.lr, steps)
    curve = []
    model.train()
    for epoch in range(args.epochs):
        start = time.time()
        beta = min(1.0, (epoch + 1) / max(args.kl_warmup, 1))
        sums = np.zeros(3)
        for idx in torch.randperm(len(data.prev), generator=gen).split(args.batch):
            terms = losses(model, data.subset(idx), gen, args.free_bits)
            loss = (
                terms["nll_x"] + beta * terms["kl_free_bits"] + args.contact_weight * terms["bce"]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            sums += len(idx) * np.array([terms[k].item() for k in ("nll_x", "kl", "bce")])
        nll_x, kl, bce = sums / len(data.prev)
        row = {"epoch": epoch + 1, "kl_weight": beta, "train_neg_elbo": nll_x + kl,
               "train_nll_x_given_z": nll_x, "train_kl": kl, "train_bce": bce,
               **_validate(model, val, args.seed), "lr": sched.get_last_lr()[0],
               "seconds": round(time.time() - start, 2)}  # fmt: skip
        curve.append(row)
        logger.info("epoch %3d  -ELBO %.1f (KL %.1f, BCE %.3f)  val -ELBO %.1f (KL %.1f)  %.1f s",
                    row["epoch"], row["train_neg_elbo"], kl, bce, row["val_neg_elbo"],
                    row["val_kl"], row["seconds"])  # fmt: skip
    model.eval()
    return curve


def plot_curve(curve: list[dict], path: Path) -> None:
    """Loss curve (train and validation negative ELBO, KL) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in curve]
    fig, (ax, ax_kl) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(epochs, [r["train_neg_elbo"] for r in curve], label="train -ELBO (one sample of q)")
    ax.plot(epochs, [r["val_neg_elbo"] for r in curve], label="validation -ELBO")
    ax.set_ylabel("nats per transition")
    ax_kl.plot(epochs, [r["train_kl"] for r in curve], label="train KL(q || p)")
    ax_kl.plot(epochs, [r["val_kl"] for r in curve], label="validation KL(q || p)")
    ax_kl.plot(epochs, [r["kl_weight"] * max(r["train_kl"] for r in curve) for r in curve], ":",
               label="KL weight (scaled)")  # fmt: skip
    for a in (ax, ax_kl):
        a.set_xlabel("epoch")
        a.legend()
        a.grid(alpha=0.3)
    ax.set_title("CVAE motion prior training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="states_train.npz")
    parser.add_argument("--eval", type=Path, required=True, help="states_eval.npz (scores only)")
    parser.add_argument("--out", type=Path, default=here / "motion_cvae.pt")
    parser.add_argument("--latent", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--kl-warmup", type=int, default=5, help="epochs to ramp the KL weight")
    parser.add_argument(
        "--free-bits",
        type=float,
        default=0.0,
        help="nats per latent dimension below which the KL is not penalised",
    )
    parser.add_argument("--contact-weight", type=float, default=1.0)
    parser.add_argument("--max-files", type=int, default=None, help="first n training files")
    parser.add_argument(
        "--exclude",
        nargs="*",
        default=[],
        help="leave out training files whose name contains one of these strings (motion kinds "
        "or styles held out to measure the prior on motion it has not seen, e.g. _run_)",
    )
    parser.add_argument(
        "--augment",
        nargs="*",
        choices=AUGMENTATIONS,
        default=[],
        help="train also on the motions mirrored, played backwards and/or at other speeds "
        "(priors.augment; validation stays un-augmented)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debug-any-split", action="store_true",
                        help="allow a state file of another split (debugging only)")  # fmt: skip
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="do not train: score the model at --out on --eval again and rewrite its scores",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: OpenMP threads spin when the cores are shared)",
    )
    return parser.parse_args(argv)


def fail(message: str) -> None:
    """End the command with one line on stderr and exit status 2 (bad input)."""
    print(f"slahmr_priors.motion_cvae.train: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def held_out_scores(model: MotionCVAE, eval_path: Path, seed: int) -> tuple[dict, int, int]:
    """``score`` and ``perturbation_scores`` on a state file; its file and transition counts."""
    held_out = load_transitions(eval_path)
    scores = score(model, held_out, seed)
    scores["perturbations"] = perturbation_scores(model, load_motions(eval_path), seed)
    logger.info("held-out scores: %s", json.dumps(scores))
    return scores, len(np.unique(held_out.sequence.numpy())), len(held_out.prev)


def write_outputs(model: MotionCVAE, out: Path, eval_path: Path, seed: int) -> None:
    """The weights, ``scores.json`` (the metadata) and ``eval_sample.npz`` beside ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    write_sample(eval_path, out.with_name("eval_sample.npz"), 6, 120, seed)
    out.with_name("scores.json").write_text(json.dumps(model.metadata, indent=1))


def rescore(args: argparse.Namespace) -> None:
    """``--score-only``: score the saved model on ``--eval`` again (e.g. a rebuilt split)."""
    try:
        model = MotionCVAE.load(args.out)
    except (OSError, EOFError, RuntimeError, KeyError, pickle.UnpicklingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(f"{args.out}: cannot read as a motion prior ({type(e).__name__}: {first})")
    scores, files, count = held_out_scores(model, args.eval, args.seed)
    model.metadata["scores"] = scores
    model.metadata.setdefault("counts", {}).update(eval_files=files, eval_transitions=count)
    model.metadata["scored_on"] = str(args.eval)
    write_outputs(model, args.out, args.eval, args.seed)
    logger.info("rescored %s on %s", args.out, args.eval)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for path in (args.train, args.eval):
        if not path.is_file():  # before training: the evaluation file is read at the end
            fail(f"{path}: state file not found (python -m slahmr_priors.data.build)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.score_only:
        rescore(args)
        return
    start = time.time()
    try:
        data = load_transitions(args.train, args.max_files, args.exclude, args.augment)
    except ValueError as e:
        fail(f"{args.train}: {e}")
    if data.metadata.get("split") != "train" and not args.debug_any_split:
        fail(f"{args.train} holds split {data.metadata.get('split')!r}, not 'train' "
                         "(--debug-any-split to debug on it; never ship such a model)")  # fmt: skip
    is_val_file = take_numbers(data.names) % 10 == 5
    if not is_val_file.any():  # a file of the evaluation split (debugging only)
        logger.warning("no take number ends in 5: validating on every 10th file instead")
        is_val_file = np.arange(len(data.names)) % 10 == 5
    plain = load_transitions(args.train, args.max_files, args.exclude) if args.augment else data
    val_file = torch.from_numpy(is_val_file)
    train_set, val_set = (
        data.subset(~val_file[data.sequence]),
        plain.subset(val_file[plain.sequence]),
    )
    logger.info("%d training, %d validation transitions", len(train_set.prev), len(val_set.prev))
    model = build_model(train_set, args)
    curve = train(model, train_set, val_set, args)
    train_seconds = time.time() - start
    scores, eval_files, eval_count = held_out_scores(model, args.eval, args.seed)
    files = lambda s: len(np.unique(s.sequence.numpy()))  # noqa: E731
    model.metadata = {
        "data": data.metadata["data"],
        "train_split": data.metadata.get("split"),
        "split": f"trained on the {data.metadata.get('split')} split only ("
        + data.metadata["split_rule"]
        + "), less its files with take number ending in 5 (validation for the loss curve); "
        "scored on eval",
        "train_source": str(args.train), "train_command": data.metadata.get("command"),
        "counts": {"train_files": files(train_set), "train_transitions": len(train_set.prev),
                   "validation_files": files(val_set), "validation_transitions": len(val_set.prev),
                   "eval_files": eval_files, "eval_transitions": eval_count},
        "model": {**model.config, "min_std": MIN_STD, "epochs": args.epochs, "batch": args.batch,
                  "lr": args.lr, "kl_warmup": args.kl_warmup, "free_bits": args.free_bits,
                  "seed": args.seed, "exclude": args.exclude, "augment": args.augment,
                  "contact_weight": args.contact_weight, "torch": torch.__version__},
        "scores": scores,
        "command": " ".join(["python -m slahmr_priors.motion_cvae.train", *(argv or sys.argv[1:])]),
        "train_seconds": round(train_seconds, 1),
    }  # fmt: skip
    write_outputs(model, args.out, args.eval, args.seed)
    args.out.with_name("loss_curve.json").write_text(json.dumps(curve, indent=1))
    plot_curve(curve, args.out.with_name("loss_curve.png"))
    logger.info("wrote %s (%.0f s)", args.out, time.time() - start)


if __name__ == "__main__":
    main()
