"""Initial world-frame bodies from the tracker's per-frame guesses (or from keypoints alone).

A guess in camera coordinates ``(R_root_c, transl_c)`` becomes a world-frame body with
``R_root_w = R_w2c^T R_root_c`` and
``trans_w = R_w2c^T (pelvis0 + transl_c - alpha t_w2c) - pelvis0``,
where ``pelvis0`` is the pelvis of the posed body at zero translation (rotations turn about it).
Frames inside a track without a guess are filled by spherical (rotations) and linear
(translations) interpolation in the world frame.
"""

import logging

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.types import BodyParams, Observations

logger = logging.getLogger(__name__)

#: Camera-frame orientation of an upright person facing the camera (SMPL faces +z, y up;
#: OpenCV cameras look along +z with y down): a half turn about x.
FACING_CAMERA_AA = (np.pi, 0.0, 0.0)


def _interpolate_rotations(aa: np.ndarray, have: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Slerp (T, J, 3) axis-angle rotations known at ``have`` frames onto ``frames``."""
    known = np.nonzero(have)[0]
    out = aa.copy()
    if len(known) == 1:
        out[frames] = aa[known[0]]
        return out
    query = np.clip(frames, known[0], known[-1])
    for j in range(aa.shape[1]):
        slerp = Slerp(known, Rotation.from_rotvec(aa[known, j]))
        out[frames, j] = slerp(query).as_rotvec()
    return out


def _interpolate_linear(x: np.ndarray, have: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Linearly interpolate (T, D) values known at ``have`` onto ``frames`` (held at the ends)."""
    known = np.nonzero(have)[0]
    out = x.copy()
    for d in range(x.shape[1]):
        out[frames, d] = np.interp(frames, known, x[known, d])
    return out


def _fill_gaps(body: BodyParams, have: Tensor, track_mask: Tensor) -> None:
    """Fill, in place, the track frames of each person that have no guess."""
    for p in range(track_mask.shape[0]):
        frames = np.nonzero((track_mask[p] & ~have[p]).numpy())[0]
        if len(frames) == 0 or not bool(have[p].any()):
            continue
        h = have[p].numpy()
        root = _interpolate_rotations(body.root_orient[p, :, None].double().numpy(), h, frames)
        pose = _interpolate_rotations(body.pose_body[p].double().numpy(), h, frames)
        trans = _interpolate_linear(body.trans[p].double().numpy(), h, frames)
        body.root_orient[p] = torch.from_numpy(root[:, 0]).to(body.root_orient)
        body.pose_body[p] = torch.from_numpy(pose).to(body.pose_body)
        body.trans[p] = torch.from_numpy(trans).to(body.trans)


def _guess_from_keypoints(obs: Observations, body_model: BodyModel) -> tuple[Tensor, Tensor]:
    """Camera-frame root orientation and pelvis position from 2D torso size (PROX-style).

    The depth is ``f * L_3d / L_2d`` with L the shoulder-to-hip distance of the mean body and of
    the detected keypoints; the person faces the camera.

    Returns:
        ``orient_c (P, T, 3)`` and ``pelvis_c (P, T, 3)``.
    """
    P, T = obs.kp2d.shape[:2]
    zeros = torch.zeros(1, 3)
    out = body_model(torch.zeros(1, body_model.num_betas), zeros, torch.zeros(1, 21, 3), zeros)
    kp3d = body_model.keypoints(out, obs.kp_format)[0]
    sh, hp = _torso_indices(obs.kp_format)
    length_3d = (kp3d[sh].mean(0) - kp3d[hp].mean(0)).norm()
    kp = obs.kp2d
    ok = (kp[..., sh, 2] > 0).all(-1) & (kp[..., hp, 2] > 0).all(-1)
    hip_px = kp[..., hp, :2].mean(-2)
    length_2d = (kp[..., sh, :2].mean(-2) - hip_px).norm(dim=-1).clamp(min=1.0)
    intr = obs.cameras.intrins
    depth = intr[:, 0] * length_3d / length_2d
    x = (hip_px[..., 0] - intr[:, 2]) / intr[:, 0] * depth
    y = (hip_px[..., 1] - intr[:, 3]) / intr[:, 1] * depth
    pelvis_c = torch.stack([x, y, depth], -1)
    pelvis_c[~ok] = float("nan")
    orient = torch.tensor(FACING_CAMERA_AA, dtype=pelvis_c.dtype).expand(P, T, 3).clone()
    return orient, pelvis_c


def _torso_indices(kp_format: str) -> tuple[list[int], list[int]]:
    if kp_format == "coco17":
        return [5, 6], [11, 12]
    return [2, 5], [9, 12]  # op25


def initialize_bodies(
    obs: Observations, body_model: BodyModel, alpha: float, betas: Tensor | None = None
) -> BodyParams:
    """World-frame initial bodies for every person and frame of ``obs``.

    Uses the per-frame SMPL guesses where present; people without any guess are placed from
    their 2D torso size, facing the camera, in a neutral pose. Betas start at ``betas``, else at
    zero (the mean shape: a tracker's guesses come from another model's shape space).

    Args:
        alpha: initial scale of the camera translation.
        betas: (P, B) initial shapes (the guesses' translations must place the pelvis of these
            shapes, as the regressor's do), or None.

    Returns:
        ``BodyParams`` (P, T, ...) in the world frame; frames outside tracks hold copies of the
        nearest track frame.
    """
    P, T = obs.kp2d.shape[:2]
    dtype = obs.kp2d.dtype  # the body model's dtype
    cams = obs.cameras
    guess = obs.smpl_guess
    have = (guess.valid & obs.track_mask) if guess is not None else torch.zeros(P, T, dtype=bool)
    betas = torch.zeros(P, body_model.num_betas, dtype=dtype) if betas is None else betas.to(dtype)
    # Rotations turn about the pelvis, so its position at zero translation depends on betas only.
    zeros = torch.zeros(P, 3, dtype=dtype)
    pelvis0 = body_model(betas, zeros, torch.zeros(P, 21, 3, dtype=dtype), zeros).joints[:, None, 0]
    orient_c, pelvis_c = (t.to(dtype) for t in _guess_from_keypoints(obs, body_model))
    pose = torch.zeros(P, T, 21, 3, dtype=dtype)
    if guess is not None:
        pose[have] = guess.body_pose[have].to(dtype)
        orient_c[have] = guess.global_orient_c[have].to(dtype)
        rest = pelvis0 if guess.rest_pelvis is None else guess.rest_pelvis.to(dtype)
        pelvis_c[have] = (rest.expand(P, T, 3) + guess.transl_c.to(dtype))[have]
    kp_ok = ~torch.isnan(pelvis_c).any(-1) & obs.track_mask
    for p in range(P):
        if not bool(have[p].any()):
            logger.info(
                "track %s: no SMPL guesses, initializing from 2D torso size", obs.track_ids[p]
            )
            have[p] = kp_ok[p]
    missing = [obs.track_ids[p] for p in range(P) if not bool(have[p].any())]
    if missing:
        raise ValueError(
            f"cannot initialize tracks {missing}: no SMPL guess and no torso keypoints"
        )
    R_w2c = cams.R_w2c.to(dtype)
    orient_w = rotmat_to_rotvec(R_w2c.transpose(-1, -2) @ rotvec_to_rotmat(orient_c))
    pelvis_w = ((pelvis_c - alpha * cams.t_w2c.to(dtype))[..., None, :] @ R_w2c)[..., 0, :]
    body = BodyParams(orient_w, pelvis_w - pelvis0, pose, betas)
    _fill_gaps(body, have, torch.ones_like(obs.track_mask))
    return body.to(torch.float32)
