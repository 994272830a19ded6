"""The fitting problem: all energy terms over one set of observations, and the parameter layout.

Parameters travel between stages as a dict of stacked tensors ("params"):
``root_orient (P,T,3)``, ``trans (P,T,3)``, ``pose_body (P,T,63)`` (axis-angle, world frame),
``betas (P,B)``, ``log_alpha (1,1)`` (log of the camera-translation scale, so alpha stays > 0),
``floor (1,3)`` (the floor plane in its reference frame, ``init.floor``) and ``floor_ref (4,4)``
(that reference: world-to-F transform; all zeros until the floor is estimated; never optimized).
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from slahmr_opt.body import BodyModel
from slahmr_opt.config import CostConfig
from slahmr_opt.costs.priors import (
    build_anchor_term,
    build_pose_prior_term,
    build_scale_prior_term,
    build_shape_term,
)
from slahmr_opt.costs.reprojection import build_reprojection_term
from slahmr_opt.costs.smoothness import build_smoothness_term
from slahmr_opt.costs.term import Term, total_loss
from slahmr_opt.types import BodyParams, Observations

#: Config variable name -> params key.
PARAM_KEYS = {
    "root_orient": "root_orient",
    "trans": "trans",
    "pose_body": "pose_body",
    "betas": "betas",
    "alpha": "log_alpha",
    "floor": "floor",
}


@dataclass
class Problem:
    """Terms and masks of one fit.

    Attributes:
        terms: every term by name.
        track_mask: (P, T) person-frames that exist (the only ones any solver changes).
        is_static: static camera: the scale ``alpha`` is never optimized.
    """

    terms: dict[str, Term]
    track_mask: Tensor
    is_static: bool

    def add_terms(self, terms: list[Term]) -> None:
        """Add (or replace) terms, e.g. the contact terms once the floor is known."""
        self.terms.update({t.name: t for t in terms})

    def loss(self, params: dict[str, Tensor], weights: dict[str, float]):
        """``(total, {term: value})`` of the terms with positive weight."""
        return total_loss(list(self.terms.values()), params, weights)

    def optimized_keys(self, optimize: list[str]) -> set[str]:
        keys = {PARAM_KEYS[v] for v in optimize}
        if self.is_static:
            keys.discard("log_alpha")
        return keys


def build_problem(
    obs: Observations,
    body: BodyModel,
    costs: CostConfig,
    pose_prior: nn.Module | None,
    init_pose: Tensor,
    dtype: torch.dtype,
) -> Problem:
    """Build every term once; stages pick them by weight.

    Args:
        init_pose: (P, T, 63) initial body poses (anchor of the ``init_pose`` term).
    """
    mask = obs.track_mask
    terms = [
        build_reprojection_term(obs, body, costs.robust_sigma),
        build_smoothness_term("joints_smooth", mask, body, costs.smooth_joints, order=1),
        build_smoothness_term("joints_accel", mask, body, costs.smooth_joints, order=2),
        build_pose_prior_term(mask, pose_prior),
        build_shape_term(mask, body.num_betas),
        build_anchor_term(mask, init_pose),
        build_scale_prior_term(),
    ]
    for term in terms:
        term.data = {k: v.to(dtype) for k, v in term.data.items()}
    return Problem({t.name: t for t in terms}, mask, obs.cameras.is_static)


def params_from_body(body: BodyParams, alpha: float, dtype: torch.dtype) -> dict[str, Tensor]:
    """Stacked solver parameters from ``BodyParams`` and a camera scale."""
    P, T = body.trans.shape[:2]
    return {
        "root_orient": body.root_orient.to(dtype).clone(),
        "trans": body.trans.to(dtype).clone(),
        "pose_body": body.pose_body.reshape(P, T, 63).to(dtype).clone(),
        "betas": body.betas.to(dtype).clone(),
        "log_alpha": torch.tensor([[alpha]], dtype=dtype).log(),
        "floor": torch.zeros(1, 3, dtype=dtype),
        "floor_ref": torch.zeros(4, 4, dtype=dtype),
    }


def floor_estimated(params: dict[str, Tensor]) -> bool:
    """Whether ``params`` carry a floor (its reference frame is set)."""
    return "floor_ref" in params and bool(params["floor_ref"][3, 3] == 1)


def body_from_params(params: dict[str, Tensor]) -> tuple[BodyParams, float]:
    """Inverse of ``params_from_body``: ``(BodyParams, alpha)``."""
    P, T = params["trans"].shape[:2]
    body = BodyParams(
        root_orient=params["root_orient"].detach().clone(),
        trans=params["trans"].detach().clone(),
        pose_body=params["pose_body"].detach().reshape(P, T, 21, 3).clone(),
        betas=params["betas"].detach().clone(),
    )
    return body, float(params["log_alpha"].exp())
