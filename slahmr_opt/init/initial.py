"""The solve's starting point: per-frame guesses (tracker's or regressor's), camera scale and
world bodies (``init`` section of the config)."""

import logging
from dataclasses import dataclass

import torch

from slahmr_opt.body import BodyModel
from slahmr_opt.config import InitConfig
from slahmr_opt.init.from_tracks import initialize_bodies
from slahmr_opt.init.regressor import Regression, regress, with_regressor_guesses
from slahmr_opt.init.trajectory import fused_trans, regressor_alpha
from slahmr_opt.types import BodyParams, Observations

logger = logging.getLogger(__name__)


@dataclass
class InitialState:
    """Bodies (world frame, SLAM units scaled by ``alpha``), the scale, the regressor's output."""

    body: BodyParams
    alpha: float
    regression: Regression | None


def _rest_pelvis(body_model: BodyModel, betas: torch.Tensor) -> torch.Tensor:
    """(P, 1, 3) pelvis of shapes ``betas`` (P, B) at zero pose and translation."""
    return body_model.rest_pose(betas.to(body_model.dtype), False).joints[:, None, 0]


def initial_state(
    obs: Observations, body_model: BodyModel, cfg: InitConfig, builtin_body: bool = True
) -> InitialState:
    """Guesses from the tracker and/or the regressor (``cfg.guesses``), the initial scale and
    the world bodies.

    The scale is ``cfg.alpha``, or, on a moving camera where the regressor ran (or
    ``cfg.scale == "regressor"`` makes it run), its velocity cue (``init.trajectory``); the
    ``feet`` search after the stages re-estimates it on its own. With ``cfg.fuse_trajectory``
    each track the regressor guessed starts on its positions fused with the regressor's
    velocities (``init.trajectory.fused_trans``: the depth along each camera ray from the
    fusion, the position across it from the 2D keypoints). With the built-in body
    (``builtin_body``), people the regressor guessed start at its shape (it learned that
    body's shape space).
    """
    obs, regression, betas = with_regressor_guesses(
        obs, body_model, cfg.guesses, cfg.regressor_path, use_betas=builtin_body
    )
    static = obs.cameras.is_static
    if regression is None and cfg.scale == "regressor" and not static:
        regression = regress(obs, body_model, cfg.regressor_path)
    alpha, cue = cfg.alpha, None
    if regression is not None and not static and cfg.scale != "fixed":
        cue = regressor_alpha(obs, regression, _rest_pelvis(body_model, regression.shape))
        said = "none (the camera barely translates)" if cue is None else f"{cue:.4g}"
        logger.info("camera scale from the regressor's velocities: %s", said)
        alpha = cue or cfg.alpha
    body = initialize_bodies(obs, body_model, alpha, betas)
    guessed = regression is not None and cfg.guesses != "tracker"
    if cfg.fuse_trajectory and guessed:
        pelvis0 = _rest_pelvis(body_model, body.betas).to(body.trans.dtype)
        body = fused_trans(body, obs, regression, pelvis0, alpha)
    return InitialState(body, alpha, regression)
