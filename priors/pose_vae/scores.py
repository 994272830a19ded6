"""Held-out scores of the pose VAE, next to the shipped Gaussian-mixture prior on the same poses.

Scores (nats over the 63-D axis-angle pose, so the two priors' numbers compare directly):
importance-weighted NLL (64 samples), negative ELBO and the residual's energy of the VAE, exact
NLL of the mixture; how often each prior scores a held-out pose better than the same pose with
Gaussian noise added; the VAE's reconstruction error ``m(mu(x))`` vs ``x`` in degrees (geodesic,
per joint) and, through the built-in body model (the only use of slahmr_opt, imported lazily), in
mm of joint position.
"""

import logging

import numpy as np
import torch
from torch import Tensor

from slahmr_priors.pose_gmm import PoseGMM
from slahmr_priors.pose_gmm.train import NOISE_STD
from slahmr_priors.pose_vae.model import PoseVAE

logger = logging.getLogger(__name__)

IW_SAMPLES = 64
"""Importance samples per pose in the VAE's NLL estimate."""
NOISE_LEVELS = (NOISE_STD, 0.03)
"""Radians of per-dimension Gaussian noise in the 'real poses score better' checks."""
MOVING_JOINTS = [j for j in range(21) if j not in (9, 10)]
"""Body joints whose rotation the data observes (SMPL's feet/toes, body joints 10 and 11, are 0)."""


def _chunked(fn, x: Tensor, size: int = 2048) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(c) for c in x.split(size)])


def _rotmat(aa: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices of axis-angle vectors (..., 3) (Rodrigues, float64)."""
    angle = aa.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    k = aa / angle
    zero = torch.zeros_like(k[..., 0])
    kx = torch.stack([zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0], -k[..., 1],
                      k[..., 0], zero], -1).reshape(*k.shape[:-1], 3, 3)  # fmt: skip
    s, c = angle.sin()[..., None], angle.cos()[..., None]
    return torch.eye(3, dtype=aa.dtype) + s * kx + (1 - c) * kx @ kx


def geodesic_deg(a: Tensor, b: Tensor) -> Tensor:
    """(..., 21) angle between the joint rotations of poses a and b (..., 63), degrees."""
    rel = _rotmat(a.reshape(*a.shape[:-1], 21, 3)).transpose(-1, -2) @ _rotmat(
        b.reshape(*b.shape[:-1], 21, 3)
    )
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1)
    return cos.acos().rad2deg()


def joint_error_mm(pose: np.ndarray, recon: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """(N,) mean 24-joint position error (mm) between poses and reconstructions (N, 63), with
    per-pose shapes betas (N, B), root orientation and translation zero (built-in body)."""
    from slahmr_opt.body import BodyConfig, load_body_model  # offline evaluation only

    body = load_body_model(BodyConfig(), dtype=torch.float64)
    errors = []
    with torch.no_grad():
        chunks = (torch.from_numpy(a).double().split(4096) for a in (pose, recon, betas))
        for p, r, b in zip(*chunks, strict=True):
            zero = torch.zeros(len(p), 3, dtype=torch.float64)
            j_p = body(b, zero, p.reshape(-1, 21, 3), zero).joints
            j_r = body(b, zero, r.reshape(-1, 21, 3), zero).joints
            errors.append((j_p - j_r).norm(dim=-1).mean(-1) * 1000)
    return torch.cat(errors).numpy()


def _stats(values: Tensor) -> dict:
    v = values.double()
    return {"mean": float(v.mean()), "median": float(v.median()),
            "p95": float(torch.quantile(v, 0.95))}  # fmt: skip


def _vae_scores(vae: PoseVAE, x: Tensor, seed: int) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "iw_nll": _chunked(lambda c: vae.nll(c, IW_SAMPLES, gen), x, 1024),
        "neg_elbo": _chunked(lambda c: vae.nll(c, 1, gen), x),
        "energy": _chunked(vae.energy, x),
    }


def _spearman(a: Tensor, b: Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def score_priors(
    vae: PoseVAE, x_eval: np.ndarray, betas_eval: np.ndarray, x_train: np.ndarray, seed: int
) -> dict:
    """Scores of the VAE and the shipped mixture (see the module docstring).

    Args:
        vae: trained model (evaluated in float64).
        x_eval: (N, 63) held-out poses; betas_eval: (N, B) their fitted shapes.
        x_train: (M, 63) training poses (a 20,000-pose subset is scored, or all if fewer).
        seed: noise and sampling seed.
    """
    vae = vae.double().eval()
    gmm = PoseGMM.load()
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(x_eval)
    size = min(20000, len(x_train))
    sub = torch.from_numpy(x_train[np.sort(rng.choice(len(x_train), size, replace=False))])
    out = {"train_subset": {}, "eval": {}}
    for split, poses in (("train_subset", sub), ("eval", x)):
        vs = _vae_scores(vae, poses, seed)
        out[split] = {f"vae_{k}": _stats(v) for k, v in vs.items()}
        out[split]["gmm_nll"] = _stats(_chunked(gmm.nll, poses))
        if split == "eval":
            clean = {**vs, "gmm_nll": _chunked(gmm.nll, poses)}
    out["eval_energy_vs_iw_nll_spearman"] = _spearman(clean["energy"], clean["iw_nll"])
    for std in NOISE_LEVELS:
        noisy = x + torch.from_numpy(rng.normal(0.0, std, x_eval.shape))
        scores = {**_vae_scores(vae, noisy, seed + 1), "gmm_nll": _chunked(gmm.nll, noisy)}
        out[f"eval_noise_{std:g}rad"] = {
            **{f"vae_{k}" if k != "gmm_nll" else k: _stats(v) for k, v in scores.items()},
            "noisy_scores_worse_fraction": {
                (f"vae_{k}" if k != "gmm_nll" else k): float((v > clean[k]).double().mean())
                for k, v in scores.items()
            },
        }
    recon = _chunked(vae.reconstruct, x)
    deg = geodesic_deg(recon, x)[:, MOVING_JOINTS]
    out["eval_reconstruction"] = {
        "deg_per_joint": _stats(deg.flatten()),
        "deg_mean_per_pose": _stats(deg.mean(-1)),
        "joint_mm": _stats(torch.from_numpy(joint_error_mm(x_eval, recon.numpy(), betas_eval))),
    }
    return out
