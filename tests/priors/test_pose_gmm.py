"""Gaussian-mixture pose prior: shipped file, residual semantics, gradients, held-out scores."""

import math

import numpy as np
import pytest
import torch

from slahmr_priors.pose_gmm import PoseGMM
from slahmr_priors.pose_gmm.model import SHIPPED

EVAL_SAMPLE = SHIPPED.with_name("eval_sample.npz")


@pytest.fixture(scope="module")
def prior() -> PoseGMM:
    return PoseGMM.load()


@pytest.fixture(scope="module")
def eval_poses() -> torch.Tensor:
    with np.load(EVAL_SAMPLE) as data:
        return torch.from_numpy(data["pose_body"]).double()


def _small_gmm(seed: int = 0, k: int = 3, d: int = 5) -> tuple[PoseGMM, np.ndarray]:
    """A random mixture and its parameters' covariances."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d))
    cov = a @ a.transpose(0, 2, 1) + 0.5 * np.eye(d)
    chol = np.stack([np.linalg.inv(np.linalg.cholesky(c)).T for c in cov])
    weights = rng.dirichlet(np.ones(k))
    return PoseGMM(weights, rng.normal(size=(k, d)), chol), cov


def test_shipped_prior_loads_from_any_directory(monkeypatch, tmp_path, prior):
    monkeypatch.chdir(tmp_path)
    again = PoseGMM.load()
    assert again.dim == 63 and again.means.shape == prior.means.shape == (8, 63)
    assert "train" in prior.metadata["split"]
    assert prior.metadata["counts"]["train_frames"] > 1000


def test_nll_matches_the_mixture_density():
    gmm, cov = _small_gmm()
    x = torch.randn(7, 5, dtype=torch.float64)
    dens = sum(
        w * torch.distributions.MultivariateNormal(mu, torch.from_numpy(c)).log_prob(x).exp()
        for w, mu, c in zip(gmm.log_weights.exp(), gmm.means, cov, strict=True)
    )
    torch.testing.assert_close(gmm.nll(x), -dens.log())


def test_residual_encodes_the_best_component(prior, eval_poses):
    res = prior.residual(eval_poses)
    assert res.shape == (len(eval_poses), 64) and torch.isfinite(res).all()
    best = 0.5 * res.square().sum(-1) + prior.consts.min()
    torch.testing.assert_close(best, prior.max_mixture_nll(eval_poses))
    nll = prior.nll(eval_poses)
    assert (best >= nll - 1e-9).all() and (best <= nll + math.log(8) + 1e-9).all()


def test_residual_accepts_float32_and_batches(prior, eval_poses):
    res = prior.residual(eval_poses.float().reshape(4, -1, 63))
    assert res.dtype == torch.float32 and res.shape == (4, len(eval_poses) // 4, 64)
    torch.testing.assert_close(res.reshape(-1, 64).double(), prior.residual(eval_poses),
                               atol=1e-3, rtol=1e-4)  # fmt: skip


def test_residual_gradcheck(prior, eval_poses):
    pose = eval_poses[:3].clone().requires_grad_()
    assert torch.autograd.gradcheck(prior.residual, (pose,))
    assert torch.autograd.gradcheck(prior.nll, (pose,))


def test_wrong_pose_size_is_reported(prior):
    with pytest.raises(ValueError, match=r"\(\.\.\., 63\)"):
        prior.residual(torch.zeros(2, 69))


def test_eval_poses_score_better_than_noisy_ones(prior, eval_poses):
    g = torch.Generator().manual_seed(0)
    noisy = eval_poses + 0.1 * torch.randn(eval_poses.shape, generator=g, dtype=torch.float64)
    clean_nll, noisy_nll = prior.nll(eval_poses), prior.nll(noisy)
    assert clean_nll.mean() < noisy_nll.mean()
    assert (clean_nll < noisy_nll).double().mean() > 0.9
