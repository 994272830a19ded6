"""Pose VAE prior: shipped weights, residual semantics and Jacobian, held-out scores, config."""


import numpy as np
import pytest
import torch
from torch.func import jacrev, vmap

from slahmr_opt.config import ConfigError, load_config
from slahmr_opt.costs.priors import load_pose_prior
from slahmr_opt.errors import InputError
from slahmr_priors.pose_vae import PoseVAE
from slahmr_priors.pose_vae.model import SHIPPED

EVAL_SAMPLE = SHIPPED.with_name("eval_sample.npz")


@pytest.fixture(scope="module")
def prior() -> PoseVAE:
    return PoseVAE.load().double()


@pytest.fixture(scope="module")
def eval_poses() -> torch.Tensor:
    with np.load(EVAL_SAMPLE) as data:
        return torch.from_numpy(data["pose_body"]).double()


def test_shipped_weights_load_with_weights_only(monkeypatch, tmp_path):
    blob = torch.load(SHIPPED, weights_only=True)
    assert set(blob) == {"state_dict", "config", "metadata"}
    assert SHIPPED.stat().st_size < 4e6
    monkeypatch.chdir(tmp_path)
    model = PoseVAE.load()
    assert not model.training and model.latent == blob["config"]["latent"]
    assert not any(p.requires_grad for p in model.parameters())
    assert "train split" in model.metadata["split"]
    assert model.metadata["counts"]["train_poses"] > 50000
    # the toes and spine1's lateral bend are not learned: fixed N(0, 0.2^2)
    assert model.metadata["model"]["unobserved_dims"] == [8, 27, 28, 29, 30, 31, 32]
    torch.testing.assert_close(model.std[27:33], torch.full((6,), 0.2))


def test_save_load_round_trip(tmp_path, eval_poses):
    torch.manual_seed(0)
    observed = torch.ones(63, dtype=torch.bool)
    observed[:3] = False
    model = PoseVAE(observed, torch.randn(63) * 0.1, torch.rand(63) + 0.1, latent=4, hidden=8)
    model.save(tmp_path / "vae.pt")
    again = PoseVAE.load(tmp_path / "vae.pt")
    pose = eval_poses.float()
    torch.testing.assert_close(again.residual(pose), model.residual(pose))


def test_residual_encodes_the_energy(prior, eval_poses):
    res = prior.residual(eval_poses)
    assert res.shape == (len(eval_poses), prior.latent + 63) and torch.isfinite(res).all()
    mu, _ = prior.encode(eval_poses)
    torch.testing.assert_close(res[:, : prior.latent], mu)
    # energy = -log N(mu; 0, I) - log N(x; m(mu), diag s^2)
    latent = torch.distributions.Normal(0.0, 1.0).log_prob(mu).sum(-1)
    lik = torch.distributions.Normal(prior.reconstruct(eval_poses), prior.std)
    torch.testing.assert_close(prior.energy(eval_poses), -latent - lik.log_prob(eval_poses).sum(-1))


def test_residual_accepts_float32_and_batches(prior, eval_poses):
    model = PoseVAE.load()
    res = model.residual(eval_poses.float().reshape(4, -1, 63))
    assert res.dtype == torch.float32 and res.shape == (4, len(eval_poses) // 4, 95)
    torch.testing.assert_close(
        res.reshape(-1, 95).double(), prior.residual(eval_poses), atol=1e-3, rtol=1e-4
    )


def test_residual_gradcheck(prior, eval_poses):
    pose = eval_poses[:2].clone().requires_grad_()
    assert torch.autograd.gradcheck(prior.residual, (pose,))


def test_analytic_jacobian_matches_autodiff(prior, eval_poses):
    res, jac = prior.residual_and_jacobian(eval_poses[:8])
    torch.testing.assert_close(res, prior.residual(eval_poses[:8]))
    torch.testing.assert_close(jac, vmap(jacrev(prior.residual))(eval_poses[:8]))
    _, single = prior.residual_and_jacobian(eval_poses[0])
    torch.testing.assert_close(single, jac[0])


def test_wrong_pose_size_is_reported(prior):
    with pytest.raises(ValueError, match=r"\(\.\.\., 63\)"):
        prior.residual(torch.zeros(2, 69, dtype=torch.float64))


def test_eval_poses_score_better_than_noisy_ones(prior, eval_poses):
    g = torch.Generator().manual_seed(0)
    noisy = eval_poses + 0.1 * torch.randn(eval_poses.shape, generator=g, dtype=torch.float64)
    for score in (prior.energy, lambda x: prior.nll(x, 16, torch.Generator().manual_seed(1))):
        clean_score, noisy_score = score(eval_poses), score(noisy)
        assert clean_score.mean() < noisy_score.mean()
        assert (clean_score < noisy_score).double().mean() > 0.9


def test_importance_weighting_tightens_the_elbo(prior, eval_poses):
    neg_elbo = prior.nll(eval_poses, 1, torch.Generator().manual_seed(0))
    iw_nll = prior.nll(eval_poses, 64, torch.Generator().manual_seed(0))
    assert iw_nll.mean() < neg_elbo.mean()
    # held-out poses are likely: well below the mean NLL of N(0, 0.2^2) per dimension (~ -38)
    assert iw_nll.mean() < -80


def test_vae_is_the_default_pose_prior_and_the_solver_loads_it(tmp_path):
    assert load_config().costs.pose_prior == "vae"
    assert load_config(None, ["costs.pose_prior=gmm"]).costs.pose_prior == "gmm"
    assert isinstance(load_pose_prior("vae", None), PoseVAE)
    with pytest.raises(ConfigError, match="costs.pose_prior"):
        load_config(None, ["costs.pose_prior=vposer"])
    with pytest.raises(InputError, match="not found"):
        load_pose_prior("vae", str(tmp_path / "missing.pt"))
