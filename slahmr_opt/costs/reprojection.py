"""2D reprojection of body keypoints through the per-frame camera (SLAHMR's ``Joints2DLoss``).

Loss of one element: ``sum_k sum_{d in x,y} c_k^2 rho(u_kd - u_obs_kd)`` with the Geman-McClure
``rho(r) = sigma^2 r^2 / (sigma^2 + r^2)`` applied per coordinate and squared confidences, as in
SLAHMR. As a least-squares residual: ``e = c * sigma * r / sqrt(sigma^2 + r^2)``, so ``e^2`` is
exactly that loss and Gauss-Newton / LM can use it directly. ``reprojection_jacobian`` gives the
same residual with its analytic Jacobians (native body backend).
"""

from functools import partial

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.body.jacobian import body_point_jacobians, supports_analytic_jacobians
from slahmr_opt.costs.kinematics import world_keypoints
from slahmr_opt.costs.robust import gmof_derivative, gmof_residual
from slahmr_opt.costs.term import Input, Term
from slahmr_opt.geometry.camera import MIN_DEPTH, project, world_to_camera
from slahmr_opt.types import Observations

#: Body variables ``body_point_jacobians`` differentiates (``trans`` has the identity Jacobian).
BODY_WRT = frozenset({"root_orient", "pose_body", "betas"})


def pack_cameras(R_w2c: Tensor, t_w2c: Tensor, intrins: Tensor) -> Tensor:
    """(N, 16) ``[R_w2c (9), t_w2c (3), fx, fy, cx, cy]`` per frame."""
    return torch.cat([R_w2c.flatten(-2), t_w2c, intrins], dim=-1)


def reprojection_from_points(
    points_w: Tensor, kp_obs: Tensor, cam: Tensor, log_alpha: Tensor, sigma: float
) -> Tensor:
    """Robust, confidence-weighted pixel residuals of world points.

    Args:
        points_w: (N, K, 3) predicted keypoints, world frame, metres.
        kp_obs: (N, K, 3) observed ``[u, v, confidence]``.
        cam: (N, 16) packed cameras (``pack_cameras``); translation in SLAM units.
        log_alpha: (N, 1) log of the metric scale of the camera translation.
        sigma: Geman-McClure scale, pixels.

    Returns:
        (N, 2K) residuals.
    """
    R = cam[:, :9].reshape(-1, 3, 3)
    uv = project(world_to_camera(points_w, R, cam[:, 9:12], log_alpha.exp()), cam[:, 12:16])
    r = gmof_residual(uv - kp_obs[..., :2], sigma) * kp_obs[..., 2:3]
    return r.flatten(-2)


def reprojection_residual(
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
    log_alpha: Tensor,
    kp_obs: Tensor,
    cam: Tensor,
    *,
    body: BodyModel,
    kp_format: str,
    sigma: float,
) -> Tensor:
    """(N, 2K) reprojection residuals of N person-frames (shapes as in ``world_keypoints``)."""
    points = world_keypoints(body, kp_format, root_orient, trans, pose_body, betas)
    return reprojection_from_points(points, kp_obs, cam, log_alpha, sigma)


def reprojection_jacobian(
    wrt: frozenset[str],
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
    log_alpha: Tensor,
    kp_obs: Tensor,
    cam: Tensor,
    *,
    body: BodyModel,
    kp_format: str,
    sigma: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``reprojection_residual`` (N, 2K) and its Jacobians (N, 2K, n) for the arguments in ``wrt``.

    Chain: body points -> camera (``x_c = R X + alpha t``) -> pinhole (depth clamp included) ->
    Geman-McClure residual -> confidence.
    """
    pts = body_point_jacobians(
        body, root_orient, trans, pose_body, betas, kp_format, wrt=wrt & BODY_WRT
    )
    n, k = pts.points.shape[:2]
    R = cam[:, :9].reshape(-1, 3, 3)
    t_scaled = log_alpha.exp() * cam[:, 9:12]  # (N, 3) metres
    xc = world_to_camera(pts.points, R, t_scaled)  # (N, K, 3)
    z = xc[..., 2:3]
    z_used = z.clamp(min=MIN_DEPTH)
    f = cam[:, None, 12:14]
    uv = f * xc[..., :2] / z_used + cam[:, None, 14:16]
    r = uv - kp_obs[..., :2]
    conf = kp_obs[..., 2:3]
    residual = (gmof_residual(r, sigma) * conf).flatten(-2)
    # d residual / d x_c, (N, K, 2, 3): zero depth column where the depth is clamped.
    scale = conf * gmof_derivative(r, sigma) * f / z_used  # (N, K, 2)
    dz = torch.where(z >= MIN_DEPTH, -xc[..., :2] / z_used, torch.zeros_like(z))
    zero = torch.zeros_like(scale[..., 0])
    d_xc = torch.stack(
        [
            torch.stack([scale[..., 0], zero, scale[..., 0] * dz[..., 0]], -1),
            torch.stack([zero, scale[..., 1], scale[..., 1] * dz[..., 1]], -1),
        ],
        -2,
    )
    d_world = d_xc @ R[:, None]  # (N, K, 2, 3)
    jac = {}
    for arg, point_jac in (
        ("root_orient", pts.root_orient),
        ("pose_body", pts.pose_body),
        ("betas", pts.betas),
    ):
        if arg in wrt:
            jac[arg] = (d_world @ point_jac.to(d_world.dtype)).reshape(n, 2 * k, -1)
    if "trans" in wrt:
        jac["trans"] = d_world.reshape(n, 2 * k, 3)
    if "log_alpha" in wrt:
        jac["log_alpha"] = (d_xc @ t_scaled[:, None, :, None]).reshape(n, 2 * k, 1)
    return residual, jac


def build_reprojection_term(obs: Observations, body: BodyModel, sigma: float) -> Term:
    """One element per person-frame with at least one confident keypoint."""
    visible = obs.vis_mask & (obs.kp2d[..., 2] > 0).any(-1)
    person, frame = torch.nonzero(visible, as_tuple=True)
    cams = obs.cameras
    cam = pack_cameras(cams.R_w2c, cams.t_w2c, cams.intrins)[frame]
    kp_obs = obs.kp2d[person, frame]
    options = dict(body=body, kp_format=obs.kp_format, sigma=sigma)
    return Term(
        name="kp2d",
        fn=partial(reprojection_residual, **options),
        inputs=(
            Input("root_orient", "root_orient"),
            Input("trans", "trans"),
            Input("pose_body", "pose_body"),
            Input("betas", "betas"),
            Input("log_alpha", "log_alpha"),
        ),
        person=person,
        frame=frame,
        dim=2 * kp_obs.shape[1],
        data={"kp_obs": kp_obs, "cam": cam},
        jac=(
            partial(reprojection_jacobian, **options) if supports_analytic_jacobians(body) else None
        ),
    )
