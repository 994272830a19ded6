"""Train the Gaussian-mixture pose prior on body fits of the mocap training split.

    python -m slahmr_priors.pose_gmm.train --mocap ../shared/data/mocap/bandai-namco-2.tar.xz \\
        --out priors/pose_gmm/pose_gmm.npz

Fits the body model to the training split (every ``--stride``-th frame) and to the evaluation split
(every frame), caching both in ``--cache-dir`` (reused when present), then fits a full-covariance
GaussianMixture over the 63-D body pose (root orientation excluded) and reports the held-out NLL.
Reproducible: fixed split, sorted files, fixed seed.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.mixture import GaussianMixture

from slahmr_priors.pose_gmm.model import PoseGMM

logger = logging.getLogger(__name__)

DEFAULT_CACHE = Path("/tmp/slahmr_opt_mocap_fits")
NOISE_STD = 0.1
"""Radians of Gaussian noise per pose dimension in the 'noisy poses score worse' check."""
SAMPLE_SIZE = 64
"""Evaluation-split poses saved next to the prior for the tests."""
UNOBSERVED_STD = 0.2
"""Radians: spread given to pose dimensions the mocap fit cannot observe (see ``widen``)."""
MIN_STD = 0.01
"""Radians: pose dimensions whose training spread is below this count as unobserved."""


def _cached_fits(args, split: str, stride: int) -> dict:
    path = args.cache_dir / f"{split}_stride{stride}.npz"
    if not path.exists():
        from slahmr_priors.pose_gmm.prepare import prepare  # uses slahmr_opt: only when fitting

        max_files = args.max_files if split == "train" else None
        command = " ".join(["python -m slahmr_priors.pose_gmm.train", *sys.argv[1:]])
        prepare(args.mocap, split, stride, path, max_files, args.seed, workers=args.workers,
                command=command)  # fmt: skip
    with np.load(path) as data:
        fits = {k: data[k] for k in data.files}
    fits["metadata"] = json.loads(str(fits["metadata"]))
    logger.info("%s fits: %s", split, path)
    return fits


def _nll_stats(prior: PoseGMM, poses: np.ndarray) -> dict:
    with torch.no_grad():
        x = torch.from_numpy(poses.astype(np.float64))
        nll = prior.nll(x).numpy()
        max_nll = prior.max_mixture_nll(x).numpy()
    return {
        "mean_nll": float(nll.mean()),
        "median_nll": float(np.median(nll)),
        "mean_max_mixture_nll": float(max_nll.mean()),
    }


def fit_gmm(poses: np.ndarray, components: int, reg_covar: float, seed: int) -> GaussianMixture:
    """Full-covariance GaussianMixture over (N, 63) poses."""
    gmm = GaussianMixture(
        n_components=components,
        covariance_type="full",
        reg_covar=reg_covar,
        max_iter=500,
        n_init=2,
        random_state=seed,
    )
    gmm.fit(poses)
    if not gmm.converged_:
        logger.warning("GaussianMixture did not converge in %d iterations", gmm.max_iter)
    return gmm


def widen(means, covariances, dims: np.ndarray, std: float):
    """Give unobserved pose dimensions a broad, independent Gaussian in every component.

    Rotations that move no fitted point (the toes: the body's foot joints carry no target) come
    out of the fit as zeros; a mixture fitted to them would pin them to 0 with the tiny
    ``reg_covar`` spread. Their mean becomes 0 and their covariance ``std^2 I``, uncorrelated.

    Returns:
        means (K, D), covariances (K, D, D) and precision Cholesky factors (K, D, D) (upper
        triangular ``U`` with precision ``U U^T``, scikit-learn's convention).
    """
    means, cov = means.copy(), covariances.copy()
    means[:, dims] = 0.0
    cov[:, dims, :] = 0.0
    cov[:, :, dims] = 0.0
    cov[:, dims, dims] = std**2
    eye = np.eye(cov.shape[-1])
    chol = np.stack([np.linalg.solve(np.linalg.cholesky(c), eye).T for c in cov])
    return means, cov, chol


def evaluate(prior: PoseGMM, train: np.ndarray, held_out: np.ndarray, seed: int) -> dict:
    """NLL on both splits, and on held-out poses with ``NOISE_STD`` radians of added noise."""
    rng = np.random.default_rng(seed)
    noisy = held_out + rng.normal(0.0, NOISE_STD, held_out.shape)
    clean = _nll_stats(prior, held_out)
    with torch.no_grad():
        worse = prior.nll(torch.from_numpy(noisy)) > prior.nll(torch.from_numpy(held_out))
    return {
        "train": _nll_stats(prior, train),
        "eval": clean,
        "eval_noisy": {**_nll_stats(prior, noisy), "noise_std_rad": NOISE_STD},
        "noisy_scores_worse_fraction": float(worse.double().mean()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mocap", type=Path, required=True, help="bandai-namco-2.tar.xz")
    parser.add_argument("--out", type=Path, required=True, help="prior .npz to write")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--stride", type=int, default=5, help="training frames: every n-th")
    parser.add_argument("--eval-stride", type=int, default=1, help="evaluation frames")
    parser.add_argument("--max-files", type=int, default=None, help="training subset size")
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--reg-covar", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.time()
    train = _cached_fits(args, "train", args.stride)
    held_out = _cached_fits(args, "eval", args.eval_stride)
    x_train = train["pose_body"].astype(np.float64)
    x_eval = held_out["pose_body"].astype(np.float64)
    unobserved = np.flatnonzero(x_train.std(0) < MIN_STD)
    logger.info("unobserved pose dimensions (std < %.3f rad): %s", MIN_STD, unobserved.tolist())
    gmm = fit_gmm(x_train, args.components, args.reg_covar, args.seed)
    means, covariances, chol = widen(gmm.means_, gmm.covariances_, unobserved, UNOBSERVED_STD)
    prior = PoseGMM(gmm.weights_, means, chol)
    scores = evaluate(prior, x_train, x_eval, args.seed)
    metadata = {
        "data": train["metadata"]["data"],
        "split": "trained on the train split only: " + train["metadata"]["split_rule"],
        "counts": {
            "train_files": train["metadata"]["files"],
            "train_frames": int(len(x_train)),
            "train_stride": args.stride,
            "eval_files": held_out["metadata"]["files"],
            "eval_frames": int(len(x_eval)),
            "eval_stride": args.eval_stride,
        },
        "fit_residual_mm": {"train": train["metadata"]["residual_mm"],
                            "eval": held_out["metadata"]["residual_mm"]},  # fmt: skip
        "gmm": {"components": args.components, "covariance": "full", "reg_covar": args.reg_covar,
                "seed": args.seed, "sklearn": sklearn.__version__, "converged": gmm.converged_,
                "unobserved_dims": unobserved.tolist(), "unobserved_std": UNOBSERVED_STD},
        "pose": "SMPL body pose, 21 joints x axis-angle (radians), root orientation excluded",
        "scores": scores,
        "command": " ".join(["python -m slahmr_priors.pose_gmm.train", *sys.argv[1:]]),
        "train_seconds": round(time.time() - start, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out,
        weights=gmm.weights_,
        means=means,
        covariances=covariances,
        precisions_cholesky=chol,
        metadata=json.dumps(metadata),
    )
    sample = np.random.default_rng(args.seed).choice(len(x_eval), SAMPLE_SIZE, replace=False)
    np.savez(args.out.with_name("eval_sample.npz"), pose_body=x_eval[np.sort(sample)]
             .astype(np.float32), source=json.dumps(metadata["counts"]))  # fmt: skip
    logger.info("scores: %s", json.dumps(scores, indent=1))
    logger.info("wrote %s in %.0f s", args.out, time.time() - start)


if __name__ == "__main__":
    main()
