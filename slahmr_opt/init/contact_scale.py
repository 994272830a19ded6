"""Metric scale ``alpha`` of a SLAM camera trajectory from the human-scene contact.

The idea of "Humans as Checkerboards" (HAC, ICCV 2025), worked out for sparse points: a body
fitted to the keypoints has a metric size, so the camera-frame position of the sole of a planted
foot is known in metres; the SLAM map knows, in its own units, where the ground under that foot
is. Their ratio is the scale. Per person-frame, with ``n`` the ground's unit normal (up) and
``c`` its offset (``n . P = c`` for ground points ``P``, SLAM units), the sole ``S`` (camera
frame, metres) lies on the ground when

    alpha (c - n . C_t) = n . R_t^T S,      C_t = -R_t^T t_t  the camera centre (SLAM units),

i.e. the sole's metric drop below the camera over the camera's SLAM height above the ground. The
ground's height ``c`` comes from the points within a narrow cone around the sole's viewing ray
(seen around that frame) where there are enough of them, else from one plane fitted to all points
(RANSAC, normal near the bodies' up axis). The sequence's scale is the median over person-frames;
its spread and the number of frames give its uncertainty.

Heights along the normal are used, not distances along the ray as in HAC: a ray that grazes the
ground at several metres meets it far behind the foot, and sparse points rarely lie on it.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.body.keypoints import FOOT_JOINTS
from slahmr_opt.geometry.camera import invert_pose
from slahmr_opt.types import BodyParams, ScenePoints

logger = logging.getLogger(__name__)

#: Half-angle of the cone around a sole's viewing ray whose points give the local ground, degrees.
CONE_DEG = 3.0
#: Points a cone needs for a local ground height.
MIN_CONE_POINTS = 5
#: Frames either side of a frame whose points may be used there (when points carry frames).
FRAME_WINDOW = 15
#: Largest angle between the ground's normal and the bodies' up axis, degrees.
MAX_TILT_DEG = 25.0
#: RANSAC inlier distance, as a fraction of the median camera-to-point distance.
PLANE_TOL = 0.02
#: Fewest inliers of a ground plane.
MIN_PLANE_POINTS = 20
#: Largest fraction of the points that may lie below a ground plane (beyond its tolerance):
#: nothing is seen under the floor, so a "plane" with more below it cuts through walls and
#: objects (a view with hardly any floor points).
MAX_BELOW = 0.1
#: Person-frames that count as one independent measurement (a stance lasts ~10 frames).
CORRELATION_FRAMES = 10
#: Relative spread of adult stature (about 7 cm in 1.7 m). Every metric length the camera sees
#: comes from the fitted body's size, and a monocular fit cannot tell a tall person far away from
#: a short one nearby, so the scale inherits the size error: no number of contacts removes it.
BODY_SIZE_REL_STD = 0.04


@dataclass
class Ground:
    """A plane ``n . P = c`` (SLAM world, SLAM units), ``n`` pointing up."""

    normal: np.ndarray
    offset: float
    inliers: int


@dataclass
class ContactScale:
    """The scale and how well the contact determined it.

    Attributes:
        alpha: metres per SLAM unit.
        log_std: robust spread (1.4826 MAD) of the per-frame ``log alpha``.
        rel_std: relative standard error of ``alpha``: ``log_std`` over the square root of the
            number of independent measurements, combined with ``BODY_SIZE_REL_STD``.
        frames: person-frames that gave a ratio.
        local: of them, those whose ground came from points near the sole (the rest: the plane).
        ground: the fitted ground plane (None when no plane was found).
    """

    alpha: float
    log_std: float
    rel_std: float
    frames: int
    local: int
    ground: Ground | None


def fit_ground(points: np.ndarray, up: np.ndarray, centres: np.ndarray,
               iterations: int = 400, seed: int = 0) -> Ground | None:  # fmt: skip
    """The plane with most points within ``PLANE_TOL`` whose normal is within ``MAX_TILT_DEG`` of
    ``up``, that lies below most camera ``centres`` (T, 3) and has at most ``MAX_BELOW`` of the
    points under it, refitted to its inliers (normal by least squares, offset their median
    height) with a tolerance of 2.5 robust deviations, never wider than the first; None when no
    such plane exists."""
    if len(points) < MIN_PLANE_POINTS:
        return None
    scale = float(np.median(np.linalg.norm(points - centres.mean(0), axis=1)))
    tol = PLANE_TOL * scale
    rng = np.random.default_rng(seed)
    cos_tilt = np.cos(np.deg2rad(MAX_TILT_DEG))
    best, best_count = None, 0
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal = normal / norm * np.sign(normal @ up)
        if normal @ up < cos_tilt:
            continue
        offset = float(normal @ a)
        if np.mean(centres @ normal > offset) < 0.8:
            continue
        residual = points @ normal - offset
        if np.mean(residual < -tol) > MAX_BELOW:
            continue
        count = int((np.abs(residual) < tol).sum())
        if count > best_count:
            best, best_count = (normal, offset), count
    if best is None or best_count < MIN_PLANE_POINTS:
        return None
    normal, offset = best
    first_tol = tol
    for _ in range(5):  # refit to the inliers, with a tolerance shrunk to their own spread
        residual = points @ normal - offset
        inl = points[np.abs(residual) < tol]
        centre = np.median(inl, axis=0)
        normal = np.linalg.svd(inl - centre, full_matrices=False)[2][-1]
        normal = normal * np.sign(normal @ up)
        heights = inl @ normal
        offset = float(np.median(heights))
        spread = 1.4826 * float(np.median(np.abs(heights - offset)))
        tol = min(max(2.5 * spread, 1e-3 * scale), first_tol)
    residual = points @ normal - offset
    if np.mean(residual < -tol) > MAX_BELOW:
        return None
    return Ground(normal, offset, int((np.abs(residual) < tol).sum()))


def _cone_heights(sole_c: np.ndarray, t: int, R: np.ndarray, trans: np.ndarray,
                  points: ScenePoints, normal: np.ndarray) -> np.ndarray:  # fmt: skip
    """Heights ``n . P`` of the points seen around frame ``t`` within ``CONE_DEG`` of the ray
    to ``sole_c`` (3,)."""
    pts = points.points.numpy()
    if points.frames is not None:
        frames = points.frames.numpy()
        near = (frames[:, 0] <= t + FRAME_WINDOW) & (frames[:, 1] >= t - FRAME_WINDOW)
        pts = pts[near]
    y = pts @ R.T + trans
    ahead = y[:, 2] > 0
    ray = sole_c / np.linalg.norm(sole_c)
    cos = (y @ ray) / np.maximum(np.linalg.norm(y, axis=1), 1e-12)
    inside = ahead & (cos > np.cos(np.deg2rad(CONE_DEG)))
    return pts[inside] @ normal


def contact_scale(sole_c: Tensor, contact: Tensor, R_w2c: Tensor, t_w2c: Tensor,
                  points: ScenePoints, up: Tensor) -> ContactScale | None:  # fmt: skip
    """Scale of ``t_w2c`` that puts the soles of planted feet on the scene's ground.

    Args:
        sole_c: (P, T, 3) camera-frame sole points (the lowest point of each body along its up
            axis), metres.
        contact: (P, T) bool, person-frames where a foot is planted.
        R_w2c, t_w2c: (T, 3, 3), (T, 3) SLAM cameras.
        points: the SLAM map's points (same world and units as the cameras).
        up: (3,) the bodies' up direction in the SLAM world.

    Returns:
        None when the points give no ground or no contact frame has a ratio.
    """
    R, trans = R_w2c.double().numpy(), t_w2c.double().numpy()
    centres = invert_pose(R, trans)[1]
    up_np = up.double().numpy() / np.linalg.norm(up.double().numpy())
    ground = fit_ground(points.points.double().numpy(), up_np, centres)
    normal = ground.normal if ground is not None else up_np
    sole = sole_c.double().numpy()
    ratios, local = [], 0
    for p, t in zip(*np.nonzero(contact.numpy()), strict=True):
        heights = _cone_heights(sole[p, t], t, R[t], trans[t], points, normal)
        if len(heights) >= MIN_CONE_POINTS:
            offset = float(np.median(heights))
            local += 1
        elif ground is not None:
            offset = ground.offset
        else:
            continue
        camera_height = offset - normal @ centres[t]  # negative: the ground is below
        drop = normal @ (R[t].T @ sole[p, t])  # negative: the sole is below the camera
        if camera_height < 0 and drop < 0:
            ratios.append(drop / camera_height)
    if not ratios:
        return None
    logs = np.log(ratios)
    median = float(np.median(logs))
    log_std = float(1.4826 * np.median(np.abs(logs - median)))
    independent = max(len(logs) / CORRELATION_FRAMES, 1.0)
    rel_std = float(np.hypot(log_std / np.sqrt(independent), BODY_SIZE_REL_STD))
    return ContactScale(float(np.exp(median)), log_std, rel_std, len(logs), local, ground)


#: SMPL's pelvis joint; with ``FOOT_JOINTS`` it gives the bodies' up axis.
PELVIS = 0


@torch.no_grad()
def body_soles(body_model: BodyModel, body: BodyParams, chunk: int = 256) -> tuple[Tensor, Tensor]:
    """The sole of each person-frame (its lowest mesh vertex along the bodies' up axis) and that
    axis (pelvis minus the mean foot joint, averaged), in the bodies' world frame.

    Returns:
        (P, T, 3) soles and (3,) unit up vector.
    """
    P, T = body.trans.shape[:2]

    def posed(a: int, vertices: bool):
        b = min(T, a + chunk)
        return body_model(body.betas[:, None].expand(P, b - a, -1), body.root_orient[:, a:b],
                          body.pose_body[:, a:b], body.trans[:, a:b], return_vertices=vertices)

    axes = []
    for a in range(0, T, chunk):
        joints = posed(a, False).joints
        axes.append(joints[..., PELVIS, :] - joints[..., list(FOOT_JOINTS), :].mean(-2))
    axes = torch.nn.functional.normalize(torch.cat(axes, 1), dim=-1)
    up = torch.nn.functional.normalize(axes.flatten(0, 1).mean(0), dim=0)
    soles = []
    for a in range(0, T, chunk):
        verts = posed(a, True).vertices
        idx = (verts @ up).argmin(-1)
        soles.append(torch.take_along_dim(verts, idx[..., None, None], dim=-2)[..., 0, :])
    return torch.cat(soles, 1), up
