"""Held-out scores of the CVAE motion prior: likelihood, reconstruction, contacts, and how it
ranks real motion against jittered and foot-sliding copies (numpy + torch)."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from slahmr_priors.motion_cvae.data import TransitionSet
from slahmr_priors.motion_cvae.model import CONTACT_JOINTS, MotionCVAE
from slahmr_priors.motion_cvae.state import JOINTS, STATE_DIM, states_from_body

#: Perturbations scored by ``perturbation_scores``.
JITTER_POSITION = 0.01
"""m: std of a per-frame random offset of the whole body (root jitter of video estimates)."""
JITTER_POSE = 0.02
"""rad: std of per-frame noise on every body-pose and root axis-angle component."""
SLIDE_SPEED = 0.3
"""m/s: horizontal drift added to the whole body, so that a planted foot slides."""


@dataclass
class Motion:
    """World motion of one sequence (y up, floor y = 0).

    Attributes:
        root_orient: (T, 3) axis-angle. pose_body: (T, 63). joints: (T, 22, 3) m.
        contacts: (T, C) bool labels (``slahmr_priors.data.states``). fps: frame rate.
    """

    root_orient: np.ndarray
    pose_body: np.ndarray
    joints: np.ndarray
    contacts: np.ndarray
    fps: float

    def transitions(self):
        """``states_from_body`` of this motion (float64)."""
        t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
        return states_from_body(t(self.root_orient), t(self.pose_body), t(self.joints), self.fps)


def jittered(motion: Motion, rng: np.random.Generator) -> Motion:
    """The motion with per-frame noise (``JITTER_POSITION`` on the body's position,
    ``JITTER_POSE`` on every rotation component)."""
    T = len(motion.joints)
    offset = rng.normal(0, JITTER_POSITION, (T, 1, 3))
    return Motion(motion.root_orient + rng.normal(0, JITTER_POSE, (T, 3)),
                  motion.pose_body + rng.normal(0, JITTER_POSE, (T, 63)),
                  motion.joints + offset, motion.contacts, motion.fps)  # fmt: skip


def sliding(motion: Motion) -> Motion:
    """The motion with the whole body drifting along world x at ``SLIDE_SPEED``: planted feet
    slide, the pose is unchanged."""
    drift = np.arange(len(motion.joints)) / motion.fps * SLIDE_SPEED
    shift = np.zeros((len(drift), 1, 3))
    shift[:, 0, 0] = drift
    return Motion(motion.root_orient, motion.pose_body, motion.joints + shift, motion.contacts,
                  motion.fps)  # fmt: skip


@torch.no_grad()
def perturbation_scores(model: MotionCVAE, motions: list[Motion], seed: int) -> dict:
    """Energy (``model.energy``, nats per transition) of real, jittered and sliding motion.

    Sliding is scored on transitions whose frame t has a foot (ankle or toe) in contact.
    ``*_ranked`` is the fraction of transitions where the real motion scores lower.
    """
    rng = np.random.default_rng(seed)
    model = model.double()
    real, jit, slide, real_c, slide_c = [], [], [], [], []
    for motion in motions:
        tr = motion.transitions()
        e_real = model.energy(tr.prev, tr.cur)
        tj, ts = jittered(motion, rng).transitions(), sliding(motion).transitions()
        e_jit, e_slide = model.energy(tj.prev, tj.cur), model.energy(ts.prev, ts.cur)
        foot = torch.from_numpy(motion.contacts[2:, :4].any(-1))
        real.append(e_real)
        jit.append(e_jit)
        real_c.append(e_real[foot])
        slide_c.append(e_slide[foot])
        slide.append(e_slide)
    model.float()
    real, jit, real_c, slide_c = map(torch.cat, (real, jit, real_c, slide_c))
    return {
        "real_energy_mean": float(real.mean()),
        "jitter_energy_mean": float(jit.mean()),
        "jitter_ranked": float((real < jit).double().mean()),
        "contact_transitions": len(real_c),
        "real_energy_mean_in_contact": float(real_c.mean()),
        "slide_energy_mean_in_contact": float(slide_c.mean()),
        "slide_ranked": float((real_c < slide_c).double().mean()),
        "jitter": {"position_m": JITTER_POSITION, "rotation_rad": JITTER_POSE},
        "slide_speed_m_s": SLIDE_SPEED,
    }


@torch.no_grad()
def score(model: MotionCVAE, data: TransitionSet, seed: int, samples: int = 16) -> dict:
    """Held-out scores per transition (means over ``data``).

    ``neg_elbo``: one-sample negative ELBO; ``nll_iw``: importance-weighted ``-log p(x | p)``
    (``samples`` draws); ``energy``: the solver's ``0.5 |r|^2 + const``; all nats in state units
    (D = 204 dimensions). ``joint_err_mm_posterior`` / ``_prior``: mean joint distance between
    frame t's joints and the decoded ones with ``z`` at the posterior / prior mean (the second is
    a one-step prediction). ``contact_accuracy``: decoded at the posterior mean, threshold 0.5.
    ``residual_sq_p99``: the 99th percentile of the solver's squared residual ``|r|^2`` per
    transition, where stage 3's window cap (``stages.motion.prior_window_cap``) belongs.
    """
    gen = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}

    def add(name: str, values: torch.Tensor) -> None:
        sums[name] = sums.get(name, 0.0) + float(values.double().sum())

    correct = torch.zeros(len(CONTACT_JOINTS), dtype=torch.float64)
    squared = []
    for idx in torch.arange(len(data.prev)).split(4096):
        prev, cur, labels = data.prev[idx], data.cur[idx], data.contacts[idx]
        mu_q, logvar = model.posterior(prev, cur)
        z = mu_q + (0.5 * logvar).exp() * torch.randn(mu_q.shape, generator=gen)
        add("neg_elbo", model.kl(prev, mu_q, logvar) - model.log_likelihood(prev, cur, z))
        add("kl", model.kl(prev, mu_q, logvar))
        add("nll_iw", model.nll(prev, cur, samples, gen))
        add("energy", model.energy(prev, cur))
        squared.append(model.transition_residual(prev, cur).double().square().sum(-1))
        joints = cur[:, JOINTS].reshape(-1, 22, 3)
        for name, zz in (("posterior", mu_q), ("prior", model.prior(prev))):
            mean, logits = model.decode(prev, zz)
            err = (mean[:, JOINTS].reshape(-1, 22, 3) - joints).norm(dim=-1).mean(-1)
            add(f"joint_err_mm_{name}", 1000 * err)
            if name == "posterior":
                correct += ((logits > 0) == (labels > 0.5)).double().sum(0)
    n = len(data.prev)
    out = {k: v / n for k, v in sums.items()}
    accuracy = (correct / n).tolist()
    out.update(
        transitions=n, state_dim=STATE_DIM, iw_samples=samples,
        nll_iw_per_dim=out["nll_iw"] / STATE_DIM,
        residual_sq_p99=float(torch.quantile(torch.cat(squared), 0.99)),
        contact_accuracy_feet=float(np.mean(accuracy[:4])),
        contact_accuracy={str(j): a for j, a in zip(CONTACT_JOINTS, accuracy, strict=True)},
        contact_rate={str(j): float(r) for j, r in zip(CONTACT_JOINTS, data.contacts.mean(0),
                                                       strict=True)},
    )  # fmt: skip
    out["nats_to_bits"] = 1 / math.log(2)
    return out
