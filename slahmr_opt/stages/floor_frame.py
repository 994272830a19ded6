"""The floor between stages (hook ``floor``) and the output frame after the last stage.

Before the first stage that needs the floor, the floor plane and the foot contacts are estimated
from the current bodies (``init.floor``) and kept in the parameters (``floor_ref``, ``floor``,
``contacts``); the contact terms and the learned motion prior, which work in the floor's frame,
join the problem. After the last stage, the result is moved into the gravity-aligned frame of
the floor (``floor.align_output``).
"""

import logging
from dataclasses import replace

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.body.keypoints import OP25_NAMES
from slahmr_opt.config import Config
from slahmr_opt.costs.contacts import build_contact_terms
from slahmr_opt.costs.motion_prior import build_motion_prior_term, cvae_contacts, load_motion_prior
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.init.floor import (
    FloorError,
    FloorPlane,
    estimate_floor,
    floor_reference,
    gravity_transform,
    heuristic_contacts,
    plane_from_params,
)
from slahmr_opt.init.regressor import Regression, regress
from slahmr_opt.stages.problem import Problem, body_from_params, floor_estimated
from slahmr_opt.types import BodyParams, Cameras, Observations

logger = logging.getLogger(__name__)

#: ``op25`` keypoints on the feet (big and small toes, heels) used to estimate the floor.
FOOT_KEYPOINTS = tuple(
    OP25_NAMES.index(n) for n in ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
)


def posed(body_model: BodyModel, params: dict):
    """The ``BodyOutput`` (P, T, ...) of the bodies in ``params``, without gradients."""
    body, _ = body_from_params(params)
    P, T = body.trans.shape[:2]
    with torch.no_grad():
        return body_model(
            body.betas[:, None].expand(P, T, -1), body.root_orient, body.pose_body, body.trans
        )


def floor_from_bodies(obs: Observations, body_model: BodyModel, params: dict) -> FloorPlane:
    """Floor plane fitted to the feet of the bodies in ``params`` (``init.floor``)."""
    out = posed(body_model, params)
    feet = body_model.keypoints(out, "op25")[..., list(FOOT_KEYPOINTS), :]
    body_up = out.joints[..., 0, :] - feet.mean(-2)
    return estimate_floor(feet, body_up, obs.vis_mask, obs.fps)


def prepare_floor_terms(
    obs: Observations,
    body_model: BodyModel,
    params: dict,
    problem: Problem,
    cfg: Config,
    regression: Regression | None = None,
) -> dict:
    """Estimate the floor and the contact probabilities from the current bodies (once; they are
    kept in ``params``: ``floor_ref``, ``floor``, ``contacts``) and add the contact terms and,
    if a stage weights it, the motion prior (both work in the floor's frame). The ``regressor``
    contact source takes the contacts of ``regression`` (run here if None)."""
    add_prior = "motion_prior" not in problem.terms and any(
        s.weights.get("motion_prior", 0) > 0 for s in cfg.stages
    )
    cvae_contacts_needed = cfg.floor.contact_source == "cvae" and not floor_estimated(params)
    prior = None
    if add_prior or cvae_contacts_needed:
        prior = load_motion_prior(cfg.costs.motion_prior_path)
    if not floor_estimated(params):
        plane = floor_from_bodies(obs, body_model, params)
        joints = posed(body_model, params).joints
        if cfg.floor.contact_source == "regressor":
            regression = regression or regress(obs, body_model, cfg.init.regressor_path)
            contacts = regression.contact.to(joints) * obs.track_mask[..., None]
        elif cfg.floor.contact_source == "cvae":
            contacts = cvae_contacts(
                joints, params["root_orient"], params["pose_body"], obs.track_mask,
                floor_reference(plane), prior, obs.fps,
            )  # fmt: skip
        else:
            contacts = heuristic_contacts(
                joints, obs.track_mask, plane, obs.fps, cfg.floor.speed_tolerance
            )
        logger.info("contacts (%s): %.0f%% of foot point-frames", cfg.floor.contact_source,
                    100 * float(contacts[obs.track_mask].mean()))  # fmt: skip
        dtype = params["trans"].dtype
        params = dict(params)
        params["floor_ref"] = floor_reference(plane).to(dtype)
        params["floor"] = torch.zeros(1, 3, dtype=dtype)
        params["contacts"] = contacts.to(dtype)
    if "contact_slide" not in problem.terms:
        problem.add_terms(build_contact_terms(
            obs.track_mask, body_model, params["contacts"], params["floor_ref"],
            params["trans"].dtype,
        ))  # fmt: skip
    if add_prior:
        problem.add_terms([build_motion_prior_term(
            obs.track_mask, body_model, prior, params["floor_ref"], obs.fps,
            params["trans"].dtype, cfg.costs.motion_prior_sigma,
        )])  # fmt: skip
    return params


def output_frame(
    obs: Observations, body_model: BodyModel, params: dict, cameras: Cameras, cfg: Config
) -> tuple[Tensor, Tensor]:
    """The floor ``[n, d]`` (4,) in the solve world (NaN if none) and the transform (4, 4) of the
    output frame: gravity-aligned (``floor.align_output``) or the identity."""
    identity = torch.eye(4, dtype=torch.float64)
    nan = torch.full((4,), float("nan"), dtype=torch.float32)
    if floor_estimated(params):
        plane = plane_from_params(params["floor"], params["floor_ref"])
    elif cfg.floor.align_output:
        try:
            plane = floor_from_bodies(obs, body_model, params)
        except FloorError as e:
            logger.warning("no floor (%s): the result stays in the SLAM world", e)
            return nan, identity
    else:
        return nan, identity
    floor = torch.cat([plane.normal.double(), torch.tensor([plane.offset])]).float()
    if not cfg.floor.align_output:
        return floor, identity
    R0, t0 = cameras.R_w2c[0].double(), cameras.t_w2c[0].double() * cameras.alpha
    G = gravity_transform(plane, forward=R0[2], origin=-R0.T @ t0)
    return floor, G


def align_to_floor(
    body: BodyParams, cameras: Cameras, joints: Tensor, G: Tensor, body_model: BodyModel
) -> tuple[BodyParams, Cameras, Tensor]:
    """Bodies, cameras and joints moved into the frame ``x' = R x + t`` of ``G`` (4, 4), e.g.
    the gravity-aligned one. SMPL rotates about the rest pelvis ``J0``, so
    ``trans' = R (trans + J0) + t - J0``; cameras: ``R_w2c' = R_w2c R^T`` and metric
    ``t' = alpha t_w2c - R_w2c' t`` (stored in SLAM units, divided by ``alpha``)."""
    R, t = G[:3, :3].double(), G[:3, 3].double()
    P, T = body.trans.shape[:2]
    zero = torch.zeros(P, 3, dtype=body_model.dtype)
    rest = body_model(
        body.betas.to(body_model.dtype), zero, torch.zeros(P, 21, 3, dtype=body_model.dtype), zero
    )
    j0 = rest.joints[:, 0].double()[:, None]  # (P, 1, 3)
    root = R @ rotvec_to_rotmat(body.root_orient.double())
    new_body = BodyParams(
        root_orient=rotmat_to_rotvec(root).to(body.root_orient.dtype),
        trans=((body.trans.double() + j0) @ R.T + t - j0).to(body.trans.dtype),
        pose_body=body.pose_body,
        betas=body.betas,
    )
    R_w2c = cameras.R_w2c.double() @ R.T
    shift = torch.einsum("tij,j->ti", R_w2c, t) / cameras.alpha
    new_cams = replace(
        cameras,
        R_w2c=R_w2c.to(cameras.R_w2c.dtype),
        t_w2c=(cameras.t_w2c.double() - shift).to(cameras.t_w2c.dtype),
    )
    return new_body, new_cams, (joints.double() @ R.T + t).to(joints.dtype)
