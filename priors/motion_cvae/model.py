"""Conditional VAE over motion transitions (HuMoR's idea, written for this project; torch only).

States ``s`` are ``slahmr_priors.motion_cvae.state``'s 204-vectors; a transition pairs the previous
state ``p = s_{t-1}`` with ``x = s_t``, both in frame t-1's canonical frame. Generative model
(latent size L, D = 204, C contact joints):

    z | p ~ N(mu_p(p), diag sigma_p^2),     x | p, z ~ N(p + m(p, z), diag sigma_x^2),
    contacts_t | p, z ~ Bernoulli(sigmoid(c(p, z))),

with MLPs ``mu_p`` (conditional prior), ``m`` (the decoder's change from the previous state, as in
HuMoR's ``output_delta``) and ``c`` (contact logits, the decoder's other head), and a posterior
``q(z | p, x) = N(mu_q(p, x), diag exp(logvar_q(p, x)))``. The spreads ``sigma_p`` (L) and
``sigma_x`` (D) are learned but do not depend on the state (HuMoR's prior variance does): so the
negative log-density is a plain sum of squares, and a solver cannot lower it by moving the previous
state to where the prior is vaguer (a state-dependent ``log sigma`` is no square and would be
dropped from a least-squares factor).

Least-squares residual of a transition (``transition_residual``), with ``z* = mu_q(p, x)``:

    r(p, x) = [ (z* - mu_p(p)) / sigma_p ,  (x - p - m(p, z*)) / sigma_x ]      (L + D entries),
    0.5 |r|^2 + const = -log p(z*, x | p)                                      (``energy``),

the joint negative log-density at the posterior mean (Laplace's approximation of
``-log p(x | p)`` without its slowly varying curvature term). SiLU activations keep it smooth.
"""

import json
import math
from pathlib import Path

import torch
from torch import Tensor, nn

from slahmr_priors.contacts import CONTACT_JOINTS
from slahmr_priors.mlp import mlp, mlp_row_jacobian
from slahmr_priors.motion_cvae.state import STATE_DIM, states_from_body

SHIPPED = Path(__file__).resolve().with_name("motion_cvae.pt")
LOG_2PI = math.log(2 * math.pi)


class MotionCVAE(nn.Module):
    """Transition prior ``p(s_t | s_{t-1})`` with contact head (module docstring).

    Args:
        state_mean, state_std: (D,) statistics of previous states (input normalisation).
        delta_mean, delta_std: (D,) statistics of ``s_t - s_{t-1}`` (output normalisation).
        min_std: (D,) floor of ``sigma_x`` in state units (smooth, ``sqrt(min^2 + s^2)``).
        latent: L. hidden, layers: width and depth of every MLP.
        metadata: provenance (data, split, counts, command, scores), kept as ``self.metadata``.
    """

    def __init__(
        self,
        state_mean: Tensor,
        state_std: Tensor,
        delta_mean: Tensor,
        delta_std: Tensor,
        min_std: Tensor,
        latent: int = 48,
        hidden: int = 256,
        layers: int = 2,
        metadata: dict | None = None,
    ):
        super().__init__()
        for name, value in [("state_mean", state_mean), ("state_std", state_std),
                            ("delta_mean", delta_mean), ("delta_std", delta_std),
                            ("min_std", min_std)]:  # fmt: skip
            value = torch.as_tensor(value, dtype=torch.float32)
            if value.shape != (STATE_DIM,):
                raise ValueError(f"expected {name} ({STATE_DIM},), got {tuple(value.shape)}")
            self.register_buffer(name, value.clone())
        self.config = {"latent": latent, "hidden": hidden, "layers": layers}
        self.latent = latent
        self.num_contacts = len(CONTACT_JOINTS)
        self.prior_net = mlp(STATE_DIM, hidden, latent, layers)
        self.posterior_net = mlp(2 * STATE_DIM, hidden, 2 * latent, layers)
        self.decoder = mlp(STATE_DIM + latent, hidden, STATE_DIM + self.num_contacts, layers)
        self.prior_log_std = nn.Parameter(torch.zeros(latent))
        self.dec_log_std = nn.Parameter(torch.zeros(STATE_DIM))
        self.metadata = metadata or {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> "MotionCVAE":
        """Load a saved prior (``save``'s file); None loads the one shipped next to this module.

        The model comes back frozen (eval mode, no parameter gradients).
        """
        path = SHIPPED if path is None else Path(path)
        blob = torch.load(path, map_location="cpu", weights_only=True)
        state = blob["state_dict"]
        stats = [state[k] for k in ("state_mean", "state_std", "delta_mean", "delta_std",
                                    "min_std")]  # fmt: skip
        model = cls(*stats, **blob["config"], metadata=json.loads(blob.get("metadata", "{}")))
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    def save(self, path: str | Path) -> None:
        """Write the state dict (float32), constructor settings and metadata."""
        state = {k: v.detach().cpu().float() for k, v in self.state_dict().items()}
        blob = {"state_dict": state, "config": self.config, "metadata": json.dumps(self.metadata)}
        torch.save(blob, path)

    @staticmethod
    def _check(prev: Tensor, cur: Tensor | None = None) -> None:
        if prev.shape[-1] != STATE_DIM or (cur is not None and cur.shape != prev.shape):
            got = tuple(prev.shape) if cur is None else (tuple(prev.shape), tuple(cur.shape))
            raise ValueError(f"expected states (..., {STATE_DIM}) of equal shapes, got {got}")

    @property
    def prior_std(self) -> Tensor:
        """(L,) spread of the conditional prior ``sigma_p``."""
        return self.prior_log_std.exp()

    @property
    def dec_std(self) -> Tensor:
        """(D,) spread of ``x | p, z`` in state units, ``sigma_x``."""
        learned = self.delta_std * self.dec_log_std.exp()
        return (self.min_std.square() + learned.square()).sqrt()

    def _norm(self, prev: Tensor) -> Tensor:
        return (prev - self.state_mean) / self.state_std

    def prior(self, prev: Tensor) -> Tensor:
        """(..., L) mean of ``p(z | prev)`` for previous states (..., D)."""
        self._check(prev)
        return self.prior_net(self._norm(prev))

    def posterior(self, prev: Tensor, cur: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z | prev, cur)``: mean and log-variance (..., L) of transitions (..., D) x 2."""
        self._check(prev, cur)
        delta = (cur - prev - self.delta_mean) / self.delta_std
        mu, logvar = self.posterior_net(torch.cat([self._norm(prev), delta], -1)).chunk(2, -1)
        return mu, logvar

    def decode(self, prev: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Decoded mean state (..., D) ``prev + m(prev, z)`` and contact logits (..., C)."""
        self._check(prev)
        out = self.decoder(torch.cat([self._norm(prev), z], -1))
        delta, logits = out[..., :STATE_DIM], out[..., STATE_DIM:]
        return prev + self.delta_mean + self.delta_std * delta, logits

    def transition_residual(self, prev: Tensor, cur: Tensor) -> Tensor:
        """(..., L + D) least-squares residual of transitions ``prev -> cur`` (..., D) each.

        ``[(z* - mu_p(prev)) / sigma_p, (cur - decode(prev, z*)) / sigma_x]``, ``z*`` the posterior
        mean; ``0.5 |r|^2 + const == energy(prev, cur)``.
        """
        z = self.posterior(prev, cur)[0]
        mean = self.decode(prev, z)[0]
        return torch.cat([(z - self.prior(prev)) / self.prior_std, (cur - mean) / self.dec_std], -1)

    def transition_residual_and_jacobian(self, prev: Tensor,
                                         cur: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        """``transition_residual`` (..., L + D) and its Jacobians with respect to ``prev`` and
        ``cur``, (..., L + D, D) each, by the chain rule through the three MLPs (no autodiff).
        """
        self._check(prev, cur)
        D, L = STATE_DIM, self.latent
        x_prev = self._norm(prev)
        x_delta = (cur - prev - self.delta_mean) / self.delta_std
        post, jac_q = mlp_row_jacobian(self.posterior_net, torch.cat([x_prev, x_delta], -1), L)
        z = post[..., :L]
        dz_dcur = jac_q[..., D:] / self.delta_std
        dz_dprev = jac_q[..., :D] / self.state_std - dz_dcur
        mu_p, jac_p = mlp_row_jacobian(self.prior_net, x_prev, L)
        out, jac_d = mlp_row_jacobian(self.decoder, torch.cat([x_prev, z], -1), D)
        mean = prev + self.delta_mean + self.delta_std * out[..., :D]
        ddec_dprev = jac_d[..., :D] / self.state_std + jac_d[..., D:] @ dz_dprev
        ddec_dcur = jac_d[..., D:] @ dz_dcur
        eye = torch.eye(D, dtype=prev.dtype, device=prev.device)
        std_p, std_x = self.prior_std[:, None], self.dec_std[:, None]
        scale = self.delta_std[:, None]
        jac_prev = torch.cat([(dz_dprev - jac_p / self.state_std) / std_p,
                              (-eye - scale * ddec_dprev) / std_x], -2)  # fmt: skip
        jac_cur = torch.cat([dz_dcur / std_p, (eye - scale * ddec_dcur) / std_x], -2)
        residual = torch.cat([(z - mu_p) / self.prior_std, (cur - mean) / self.dec_std], -1)
        return residual, jac_prev, jac_cur

    def motion_residual(self, root_orient: Tensor, pose_body: Tensor, joints: Tensor,
                        fps: float) -> Tensor:  # fmt: skip
        """(..., T - 2, L + D) ``transition_residual`` of every transition (t-1, t), t = 2 .. T-1,
        of a motion given by the solver's variables (``states_from_body``'s arguments: root
        orientation (..., T, 3), body pose (..., T, 63), world joints (..., T, J, 3), y up, floor
        y = 0). Row t - 2 depends on frames t-2, t-1 and t only."""
        tr = states_from_body(root_orient, pose_body, joints, fps)
        return self.transition_residual(tr.prev, tr.cur)

    def contact_probabilities(self, prev: Tensor, cur: Tensor) -> Tensor:
        """(..., C) probability that each of ``CONTACT_JOINTS`` touches the floor at frame t,
        decoded at the posterior mean of the transition ``prev -> cur``."""
        z = self.posterior(prev, cur)[0]
        return torch.sigmoid(self.decode(prev, z)[1])

    @property
    def const(self) -> Tensor:
        """() ``energy - 0.5 |residual|^2``: the Gaussians' normalisers, nats."""
        return (self.prior_std.log().sum() + self.dec_std.log().sum()
                + 0.5 * (self.latent + STATE_DIM) * LOG_2PI)  # fmt: skip

    def energy(self, prev: Tensor, cur: Tensor) -> Tensor:
        """(...,) ``-log p(z*, cur | prev)`` per transition, nats: what the residual encodes."""
        return 0.5 * self.transition_residual(prev, cur).square().sum(-1) + self.const

    def log_likelihood(self, prev: Tensor, cur: Tensor, z: Tensor) -> Tensor:
        """(...,) ``log p(cur | prev, z)``, nats (state units)."""
        std = self.dec_std
        diff = (cur - self.decode(prev, z)[0]) / std
        return -0.5 * diff.square().sum(-1) - std.log().sum() - 0.5 * STATE_DIM * LOG_2PI

    def log_prior(self, prev: Tensor, z: Tensor) -> Tensor:
        """(...,) ``log p(z | prev)``, nats."""
        std = self.prior_std
        diff = (z - self.prior(prev)) / std
        return -0.5 * diff.square().sum(-1) - std.log().sum() - 0.5 * self.latent * LOG_2PI

    def kl_per_dim(self, prev: Tensor, mu_q: Tensor, logvar_q: Tensor) -> Tensor:
        """(..., L) ``KL(q(z | prev, cur) || p(z | prev))`` per latent dimension, of posterior
        parameters (..., L)."""
        mu_p, log_std_p = self.prior(prev), self.prior_log_std
        var_ratio = (logvar_q - 2 * log_std_p).exp()
        return 0.5 * (var_ratio + ((mu_q - mu_p) / log_std_p.exp()).square() - 1
                      - logvar_q + 2 * log_std_p)  # fmt: skip

    def kl(self, prev: Tensor, mu_q: Tensor, logvar_q: Tensor) -> Tensor:
        """(...,) ``KL(q(z | prev, cur) || p(z | prev))`` of posterior parameters (..., L)."""
        return self.kl_per_dim(prev, mu_q, logvar_q).sum(-1)

    @torch.no_grad()
    def nll(self, prev: Tensor, cur: Tensor, samples: int = 64,
            generator: torch.Generator | None = None) -> Tensor:  # fmt: skip
        """(N,) importance-weighted estimate of ``-log p(cur | prev)`` for (N, D) pairs, nats.

        ``-log mean_k p(cur, z_k | prev) / q(z_k | prev, cur)``, ``z_k ~ q``: an upper bound in
        expectation that tightens with ``samples`` (``samples=1``: the negative ELBO).
        """
        mu, logvar = self.posterior(prev, cur)
        std = (0.5 * logvar).exp()
        eps = torch.randn((samples, *mu.shape), generator=generator, dtype=mu.dtype)
        z = mu + std * eps
        log_q = (-0.5 * eps.square() - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)
        prev_k = prev.expand(samples, *prev.shape)
        log_w = (self.log_likelihood(prev_k, cur.expand_as(prev_k), z) + self.log_prior(prev_k, z)
                 - log_q)  # fmt: skip
        return -(torch.logsumexp(log_w, 0) - math.log(samples))
