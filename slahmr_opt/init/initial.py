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


def initial_state(obs: Observations, body_model: BodyModel, cfg: InitConfig) -> InitialState:
    """Guesses from the tracker and/or the regressor (``cfg.guesses``), the initial scale
    (``cfg.alpha``, or the regressor's velocity cue with ``cfg.scale == "regressor"``) and the
    world bodies; with ``cfg.fuse_trajectory`` each track's positions are fused with the
    regressor's velocities where the regressor ran."""
    obs, regression = with_regressor_guesses(obs, body_model, cfg.guesses, cfg.regressor_path)
    rest = body_model.rest_pose(torch.zeros(1, body_model.num_betas, dtype=body_model.dtype), False)
    pelvis0 = rest.joints[0, 0]
    alpha = cfg.alpha
    if cfg.scale == "regressor" and not obs.cameras.is_static:
        if regression is None:
            regression = regress(obs, body_model, cfg.regressor_path)
        cue = regressor_alpha(obs, regression, pelvis0)
        said = "none (the camera barely translates)" if cue is None else f"{cue:.4g}"
        logger.info("camera scale from the regressor's velocities: %s", said)
        alpha = cue or cfg.alpha
    body = initialize_bodies(obs, body_model, alpha)
    uses_regressor = regression is not None and cfg.guesses != "tracker"
    if cfg.fuse_trajectory and uses_regressor:
        body = fused_trans(body, obs, regression, pelvis0.to(body.trans.dtype))
    return InitialState(body, alpha, regression)
