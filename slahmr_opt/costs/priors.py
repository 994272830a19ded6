"""Pose and shape priors.

* Shape prior (SLAHMR's ``shape_prior_loss``): ``T_p ||beta_p||^2`` per person, where ``T_p`` is the
  number of frames the person exists (SLAHMR multiplies by the sequence length).
* Pose prior: a model with ``residual(pose (..., 63)) -> (..., D)`` whose squared norm is the pose's
  negative log-likelihood up to a constant (the Gaussian-mixture prior of
  ``slahmr_priors.pose_gmm``), or plain ``||pose||^2`` (``l2``).
* Initial-pose anchor: ``||pose - pose_init||^2`` keeps the body pose near the tracker's guess.
* Camera-scale prior: ``((log alpha - log alpha_0) / sigma)^2`` keeps the camera scale near the
  scene's estimate (``init.contact_scale``: ``alpha_0`` and its relative error ``sigma``) in a
  stage that optimizes ``alpha``; ``sigma = inf`` (no estimate yet) makes it free.

Each has an analytic Jacobian (``Term.jac``); the pose prior's comes from the model's
``residual_and_jacobian`` when it has one (else autodiff).
"""

from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn

from slahmr_opt.costs.term import Input, Term
from slahmr_opt.errors import InputError, SlahmrOptError


def load_pose_prior(kind: str, path: str | None) -> nn.Module | None:
    """The pose prior model of the ``pose_prior`` term (``costs.pose_prior``).

    Args:
        kind: ``gmm`` (``slahmr_priors.pose_gmm``), ``vae`` (``slahmr_priors.pose_vae``) or ``l2``.
        path: weights file (``costs.pose_prior_path``); None loads the shipped one.

    Returns:
        The loaded model, or None for ``l2`` (plain ``||pose||^2``).
    """
    if kind == "l2":
        return None
    if kind == "gmm":
        from slahmr_priors.pose_gmm.model import SHIPPED, PoseGMM

        file = Path(path) if path else SHIPPED
        if not file.exists():
            raise InputError(file, "pose prior file not found (costs.pose_prior_path)")
        return PoseGMM.load(file)
    if kind == "vae":
        from slahmr_priors.pose_vae.model import SHIPPED, PoseVAE

        file = Path(path) if path else SHIPPED
        if not file.exists():
            raise InputError(file, "pose prior file not found (costs.pose_prior_path)")
        return PoseVAE.load(file)
    raise SlahmrOptError(f"unknown pose prior {kind!r} (known: gmm, vae, l2)")


def shape_residual(betas: Tensor, scale: Tensor) -> Tensor:
    """(N, B) residual ``sqrt(T_p) beta``; ``scale`` (N, 1) holds ``sqrt(T_p)``."""
    return betas * scale


def pose_prior_residual(pose_body: Tensor, *, model: nn.Module | None) -> Tensor:
    """(N, D) pose prior residual of (N, 63) axis-angle body poses; ``model=None`` is L2."""
    return pose_body if model is None else model.residual(pose_body)


def shape_jacobian(
    wrt: frozenset[str], betas: Tensor, scale: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """``shape_residual`` and its Jacobian ``diag(scale)`` (N, B, B)."""
    eye = torch.eye(betas.shape[-1], dtype=betas.dtype, device=betas.device)
    return shape_residual(betas, scale), {"betas": scale[..., None] * eye}


def pose_prior_jacobian(
    wrt: frozenset[str], pose_body: Tensor, *, model: nn.Module | None
) -> tuple[Tensor, dict[str, Tensor]]:
    """``pose_prior_residual`` and its Jacobian (N, D, 63)."""
    if model is None:
        return _identity_jacobian(pose_body, pose_body)
    residual, jac = model.residual_and_jacobian(pose_body)
    return residual, {"pose_body": jac}


def anchor_jacobian(
    wrt: frozenset[str], pose_body: Tensor, pose_init: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """``anchor_residual`` and its identity Jacobian (N, 63, 63)."""
    return _identity_jacobian(anchor_residual(pose_body, pose_init), pose_body)


def _identity_jacobian(residual: Tensor, pose_body: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    n, d = pose_body.shape
    eye = torch.eye(d, dtype=pose_body.dtype, device=pose_body.device)
    return residual, {"pose_body": eye.expand(n, d, d)}


def anchor_residual(pose_body: Tensor, pose_init: Tensor) -> Tensor:
    """(N, 63) difference from the initial pose."""
    return pose_body - pose_init


def build_shape_term(track_mask: Tensor, num_betas: int) -> Term:
    person = torch.arange(track_mask.shape[0])
    scale = track_mask.sum(1, keepdim=True).double().sqrt()
    return Term(
        name="shape_prior",
        fn=shape_residual,
        inputs=(Input("betas", "betas"),),
        person=person,
        frame=torch.zeros_like(person),
        dim=num_betas,
        data={"scale": scale},
        jac=shape_jacobian,
    )


def build_pose_prior_term(track_mask: Tensor, model: nn.Module | None) -> Term:
    person, frame = torch.nonzero(track_mask, as_tuple=True)
    dim = 63 if model is None else int(model.residual(torch.zeros(1, 63)).shape[-1])
    return Term(
        name="pose_prior",
        fn=partial(pose_prior_residual, model=model),
        inputs=(Input("pose_body", "pose_body"),),
        person=person,
        frame=frame,
        dim=dim,
        jac=(
            partial(pose_prior_jacobian, model=model)
            if model is None or hasattr(model, "residual_and_jacobian")
            else None
        ),
    )


def build_anchor_term(track_mask: Tensor, pose_init: Tensor) -> Term:
    """``pose_init``: (P, T, 63) initial body poses."""
    person, frame = torch.nonzero(track_mask, as_tuple=True)
    return Term(
        name="init_pose",
        fn=anchor_residual,
        inputs=(Input("pose_body", "pose_body"),),
        person=person,
        frame=frame,
        dim=63,
        data={"pose_init": pose_init[person, frame]},
        jac=anchor_jacobian,
    )


def scale_prior_residual(log_alpha: Tensor, ref: Tensor, inv_sigma: Tensor) -> Tensor:
    """(1, 1) ``(log alpha - ref) / sigma``."""
    return (log_alpha - ref) * inv_sigma


def scale_prior_jacobian(
    wrt: frozenset, log_alpha: Tensor, ref: Tensor, inv_sigma: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    residual = scale_prior_residual(log_alpha, ref, inv_sigma)
    return residual, ({"log_alpha": inv_sigma[..., None]} if "log_alpha" in wrt else {})


def build_scale_prior_term() -> Term:
    """One element on the sequence's ``log_alpha``; free until ``set_scale_prior``."""
    zero = torch.zeros(1, dtype=torch.long)
    return Term(
        name="scale_prior",
        fn=scale_prior_residual,
        inputs=(Input("log_alpha", "log_alpha"),),
        person=zero,
        frame=zero,
        dim=1,
        data={"ref": torch.zeros(1, 1), "inv_sigma": torch.zeros(1, 1)},
        jac=scale_prior_jacobian,
    )


def set_scale_prior(term: Term, alpha: float, rel_std: float) -> None:
    """Centre the camera-scale prior on ``alpha`` with relative error ``rel_std``."""
    term.data["ref"].fill_(float(torch.tensor(alpha).log()))
    term.data["inv_sigma"].fill_(1.0 / rel_std)
