"""Variational autoencoder over the 63-D SMPL body pose (21 joints, axis-angle, radians).

Generative model (latent size L, observed pose dimensions O, the rest U = 63 - O):

    z ~ N(0, I_L),   x_d | z ~ N(m_d(z), s_d^2)  (d in O),   x_d ~ N(0, s_U^2)  (d in U).

``m`` is an MLP decoder, ``s`` one learned spread per observed dimension (independent of ``z``, so
that the likelihood is a plain weighted least-squares term) and ``s_U`` a fixed spread for the
dimensions the training data cannot observe (the toe rotations and spine1's lateral bend, which
the mocap fits leave at 0; the Gaussian-mixture prior treats them the same way). The encoder is
an MLP ``q(z | x) = N(mu(x), diag exp(logvar(x)))``. Axis-angle in and out: the training poses
stay below 2.5 rad, far from the pi wrap-around, and a density over axis-angle vectors is in the
same units as the Gaussian-mixture prior's, so the two priors' NLLs compare directly.

Least-squares residual (``residual``): ``r(x) = [mu(x), (x - m(mu(x))) / s]`` (L + 63 entries), so

    0.5 |r(x)|^2 + const = -log p(x, z = mu(x))      (``energy``),

the joint negative log-density at the encoder's mean. If ``mu(x)`` were the exact mode of
``p(z | x)``, this would be Laplace's approximation of ``-log p(x)`` without its
``0.5 log det`` curvature term, which varies slowly with the pose and is not a sum of squares;
the first L entries are the latent prior ``0.5 |z|^2`` (VPoser's usual use), the rest say how far
the pose is from the nearest decoded pose, in units of the data's spread. Smooth activations
(SiLU) keep the residual's Jacobian continuous for Gauss-Newton.

Imports torch only (never slahmr_opt).
"""

import json
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from slahmr_priors.mlp import mlp, mlp_row_jacobian

SHIPPED = Path(__file__).resolve().with_name("pose_vae.pt")
POSE_DIM = 63
LOG_2PI = math.log(2 * math.pi)


def _mlp_with_jacobian(mlp: nn.Sequential, x: Tensor, jac: Tensor) -> tuple[Tensor, Tensor]:
    """``mlp(x)`` (..., n_out) and its Jacobian times ``jac`` (..., n_in, K): (..., n_out, K).

    Only ``nn.Linear`` and ``nn.SiLU`` layers (``slahmr_priors.mlp.mlp``'s);
    ``silu'(a) = s (1 + a (1 - s))``, ``s = sigmoid(a)``.
    """
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            x, jac = layer(x), layer.weight @ jac
        elif isinstance(layer, nn.SiLU):
            s = torch.sigmoid(x)
            x, jac = x * s, (s * (1 + x * (1 - s)))[..., None] * jac
        else:
            raise TypeError(f"no Jacobian for layer {layer}")
    return x, jac


class PoseVAE(nn.Module):
    """Pose VAE with a least-squares residual for the solver (see the module docstring).

    Args:
        observed: (63,) bool, pose dimensions the VAE models; the others get ``N(0, s_U^2)``.
        pose_mean: (63,) training pose mean (encoder input and decoder output normalization).
        pose_scale: (63,) training pose standard deviation (same use; ignored where unobserved).
        latent: latent size L.
        hidden: width of the encoder's and decoder's hidden layers.
        layers: hidden layers per MLP.
        unobserved_std: ``s_U``, radians.
        min_std: radians; floor of the learned spreads ``s_d`` (smooth, ``sqrt(min^2 + e^2)``).
        metadata: provenance (data, split, counts, command, scores), kept as ``self.metadata``.
    """

    def __init__(
        self,
        observed: Tensor,
        pose_mean: Tensor,
        pose_scale: Tensor,
        latent: int = 32,
        hidden: int = 256,
        layers: int = 2,
        unobserved_std: float = 0.2,
        min_std: float = 0.005,
        metadata: dict | None = None,
    ):
        super().__init__()
        observed = torch.as_tensor(observed, dtype=torch.bool)
        if observed.shape != (POSE_DIM,):
            raise ValueError(f"expected observed (63,), got {tuple(observed.shape)}")
        self.config = {"latent": latent, "hidden": hidden, "layers": layers,
                       "unobserved_std": unobserved_std, "min_std": min_std}  # fmt: skip
        self.latent = latent
        self.register_buffer("observed", observed)
        mean = torch.as_tensor(pose_mean, dtype=torch.float32)
        self.register_buffer("pose_mean", mean * observed)
        scale = torch.as_tensor(pose_scale, dtype=torch.float32)
        self.register_buffer("pose_scale", torch.where(observed, scale, torch.ones_like(scale)))
        self.register_buffer("unobserved_std", torch.tensor(float(unobserved_std)))
        self.register_buffer("min_std", torch.tensor(float(min_std)))
        self.encoder = mlp(POSE_DIM, hidden, 2 * latent, layers)
        self.decoder = mlp(latent, hidden, POSE_DIM, layers)
        self.log_std = nn.Parameter(self.pose_scale.log().clone())
        self.metadata = metadata or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PoseVAE":
        """Load a saved prior (``save``'s file); None loads the one shipped next to this module.

        The model comes back frozen (eval mode, no parameter gradients): solvers differentiate
        the residual with respect to the pose only.
        """
        path = SHIPPED if path is None else Path(path)
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob["state_dict"]
        model = cls(state["observed"], state["pose_mean"], state["pose_scale"], **blob["config"],
                    metadata=json.loads(blob.get("metadata", "{}")))  # fmt: skip
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    def save(self, path: str | Path) -> None:
        """Write the state dict, constructor settings and metadata (tensors, dicts, strings)."""
        state = {k: v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()
                 for k, v in self.state_dict().items()}  # fmt: skip
        blob = {"state_dict": state, "config": self.config, "metadata": json.dumps(self.metadata)}
        torch.save(blob, path)

    def _check(self, pose: Tensor) -> None:
        if pose.shape[-1] != POSE_DIM:
            raise ValueError(f"expected pose (..., {POSE_DIM}), got {tuple(pose.shape)}")

    @property
    def std(self) -> Tensor:
        """(63,) likelihood spread per pose dimension, radians (``s_d``, ``s_U`` if unobserved)."""
        learned = (self.min_std.square() + (2 * self.log_std).exp()).sqrt()
        return torch.where(self.observed, learned, self.unobserved_std.to(learned.dtype))

    def encode(self, pose: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior ``q(z | pose)``: mean (..., L) and log-variance (..., L) of poses (..., 63)."""
        self._check(pose)
        x = (pose - self.pose_mean) / self.pose_scale * self.observed
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """(..., 63) decoded pose mean ``m(z)`` of latents (..., L) (0 where unobserved)."""
        return (self.decoder(z) * self.pose_scale + self.pose_mean) * self.observed

    def reconstruct(self, pose: Tensor) -> Tensor:
        """(..., 63) ``m(mu(pose))``: the pose projected onto the decoder's manifold."""
        return self.decode(self.encode(pose)[0])

    def residual(self, pose: Tensor) -> Tensor:
        """(..., L + 63) least-squares residual ``[mu(x), (x - m(mu(x))) / s]`` of poses (..., 63).

        ``0.5 * |residual|^2 + const`` equals ``energy(pose)``.
        """
        mu = self.encode(pose)[0]
        return torch.cat([mu, (pose - self.decode(mu)) / self.std], -1)

    def residual_and_jacobian(self, pose: Tensor) -> tuple[Tensor, Tensor]:
        """``residual(pose)`` (..., L + 63) and its Jacobian (..., L + 63, 63), by the chain rule
        through the encoder and decoder layers (one batched pass, no autodiff)."""
        self._check(pose)
        x = (pose - self.pose_mean) / self.pose_scale * self.observed
        # encoder from its L outputs, decoder from its L inputs: the cheap sides of each product
        enc, jac_mu = mlp_row_jacobian(self.encoder, x, self.latent)
        mu, jac_mu = enc[..., : self.latent], jac_mu * (self.observed / self.pose_scale)
        eye_z = torch.eye(self.latent, dtype=pose.dtype, device=pose.device)
        dec, jac_z = _mlp_with_jacobian(self.decoder, mu, eye_z)
        jac_dec = jac_z @ jac_mu
        out_scale = self.pose_scale * self.observed
        std = self.std
        eye = torch.eye(POSE_DIM, dtype=pose.dtype, device=pose.device)
        jac_r = (eye - out_scale[:, None] * jac_dec) / std[:, None]
        r_pose = (pose - (dec * out_scale + self.pose_mean * self.observed)) / std
        jac_mu = jac_mu.expand(*jac_r.shape[:-2], self.latent, POSE_DIM)
        return torch.cat([mu, r_pose], -1), torch.cat([jac_mu, jac_r], -2)

    @property
    def const(self) -> Tensor:
        """() ``energy - 0.5 |residual|^2``: the Gaussians' normalizers."""
        return self.std.log().sum() + 0.5 * (POSE_DIM + self.latent) * LOG_2PI

    def energy(self, pose: Tensor) -> Tensor:
        """(...,) ``-log p(pose, z = mu(pose))``, nats: what the residual encodes."""
        return 0.5 * self.residual(pose).square().sum(-1) + self.const

    def log_likelihood(self, pose: Tensor, z: Tensor) -> Tensor:
        """(...,) ``log p(pose | z)`` of poses (..., 63) and latents (..., L)."""
        std = self.std
        diff = (pose - self.decode(z)) / std
        return -0.5 * diff.square().sum(-1) - std.log().sum() - 0.5 * POSE_DIM * LOG_2PI

    def elbo_terms(self, pose: Tensor, generator: torch.Generator | None = None):
        """One-sample ELBO terms of poses (..., 63): ``(log p(x | z), KL(q(z | x) || p(z)))``,
        both (...,), with ``z`` drawn by reparameterization (differentiable)."""
        mu, logvar = self.encode(pose)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps
        kl = 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(-1)
        return self.log_likelihood(pose, z), kl

    @torch.no_grad()
    def nll(self, pose: Tensor, samples: int = 64, generator: torch.Generator | None = None):
        """(N,) importance-weighted estimate of ``-log p(pose)`` for poses (N, 63), nats.

        ``-log mean_k p(x, z_k) / q(z_k | x)`` with ``z_k ~ q(z | x)``; its expectation bounds
        ``-log p(x)`` from above and tightens as ``samples`` grows (``samples=1``: the negative
        ELBO).
        """
        mu, logvar = self.encode(pose)
        std = (0.5 * logvar).exp()
        eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype)
        z = mu + std * eps
        log_q = (-0.5 * eps.square() - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)
        log_prior = (-0.5 * z.square() - 0.5 * LOG_2PI).sum(-1)
        log_w = self.log_likelihood(pose, z) + log_prior - log_q
        return -(torch.logsumexp(log_w, 0) - math.log(samples))
