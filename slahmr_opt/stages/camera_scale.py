"""The camera-scale step between stages (hook ``camera_scale``): re-estimate the metric scale
``alpha`` of the SLAM camera translation from the current bodies (``init.scale``) and keep every
body where the cameras see it."""

import logging

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.costs.priors import set_scale_prior
from slahmr_opt.geometry.camera import invert_pose
from slahmr_opt.init.contact_scale import body_soles, contact_scale
from slahmr_opt.init.scale import estimate_alpha, scale_observable
from slahmr_opt.stages.problem import Problem, body_from_params
from slahmr_opt.types import Observations

logger = logging.getLogger(__name__)


def rescale_camera(
    obs: Observations, body_model: BodyModel, params: dict, cue: str
) -> tuple[dict, dict]:
    """Re-estimate the camera scale (``init.scale``: ``contact`` where the observations carry
    scene points that give a ground, else ``feet``), keeping every body where the cameras see
    it: ``trans`` moves by ``(alpha_old - alpha_new) R_w2c^T t_w2c``.

    Returns:
        The new parameters and a report (``cue`` that decided, ``alpha``; for ``contact`` also
        ``rel_std``, ``frames``, ``near_sole`` and ``ground_points``).
    """
    body, alpha = body_from_params(params)
    cams = obs.cameras

    def camera_frame(x_w: Tensor) -> Tensor:
        return torch.einsum("tij,pt...j->pt...i", cams.R_w2c, x_w) + (
            alpha * cams.t_w2c
        ).view(1, -1, *([1] * (x_w.dim() - 3)), 3)

    new_alpha, report = None, {"cue": "feet"}
    if cue == "contact" and obs.points is not None:
        soles_w, up = body_soles(body_model, body)
        est = contact_scale(camera_frame(soles_w), obs.vis_mask, cams.R_w2c, cams.t_w2c,
                            obs.points, up)  # fmt: skip
        if est is None:
            logger.info("camera scale: the scene points give no ground under the feet; "
                        "falling back to the foot-still search")  # fmt: skip
        else:
            logger.info("camera scale from the human-scene contact: alpha = %.4g (+- %.1f %%, "
                        "most of it the body's size; spread %.1f %% over %d person-frames, %d "
                        "with points near the sole, ground plane of %s points); the foot-still "
                        "search is not used", est.alpha, 100 * est.rel_std, 100 * est.log_std,
                        est.frames, est.local,
                        est.ground.inliers if est.ground else "no")  # fmt: skip
            new_alpha = est.alpha
            report = {"cue": "contact", "rel_std": est.rel_std, "frames": est.frames,
                      "near_sole": est.local,
                      "ground_points": est.ground.inliers if est.ground else 0}  # fmt: skip
    if new_alpha is None:
        with torch.no_grad():
            joints_w = body_model(
                body.betas[:, None].expand(*body.trans.shape[:2], -1), body.root_orient,
                body.pose_body, body.trans,
            ).joints  # fmt: skip
        new_alpha = estimate_alpha(camera_frame(joints_w), obs.vis_mask, cams.R_w2c,
                                   cams.t_w2c, alpha)  # fmt: skip
    # The camera centres (SLAM units) scale with alpha; bodies move with them.
    shift = (new_alpha - alpha) * invert_pose(cams.R_w2c, cams.t_w2c)[1]
    out = dict(params)
    out["trans"] = params["trans"] + shift[None].to(params["trans"])
    out["log_alpha"] = torch.full_like(params["log_alpha"], new_alpha).log()
    return out, {**report, "alpha": new_alpha}


def apply_scale_report(problem: Problem, report: dict | None) -> None:
    """Centre the ``scale_prior`` term on a contact estimate (``rescale_camera``'s report;
    other reports, and None, leave it as it is)."""
    if report is not None and report.get("rel_std"):
        set_scale_prior(problem.terms["scale_prior"], report["alpha"], report["rel_std"])


def camera_scale_observable(obs: Observations) -> tuple[bool, str]:
    """Whether the camera translates enough for its metric scale to mean anything, and why not
    (logged)."""
    if obs.cameras.is_static:
        return False, "static camera"
    points = None if obs.points is None else obs.points.points
    observable, why = scale_observable(obs.cameras.t_w2c, obs.cameras.R_w2c, points)
    if not observable:
        logger.info("camera scale: %s, so the scale cannot be observed and is not searched for; "
                    "the world trajectory comes from the bodies (their size, the floor) and "
                    "results.npz reports world_scale = NaN", why)  # fmt: skip
    return observable, why
