"""Analytic Jacobians of body points (joints, detector keypoints) of the native backend.

Computed together with the forward pass, batched over N bodies, with respect to ``root_orient``
(axis-angle), ``trans``, ``pose_body`` (21 x 3 axis-angle) and ``betas``.

Rotations: a perturbation ``d theta`` of joint ``a``'s local axis-angle turns the rotation of every
joint in ``a``'s subtree by ``omega = R_a J_r(theta_a) d theta`` about ``a``'s posed position
``p_a`` (``R_a`` the world rotation of ``a``, ``J_r`` the right Jacobian of the SO(3)
exponential). A skinned point ``x = sum_k w_k x_k`` with ``x_k = G_k v`` moves by
``omega x s_a``, ``s_a = sum_{k in subtree(a)} w_k (x_k - p_a)``, so
``dx / d theta_a = -[s_a]_x R_a J_r(theta_a)``; a joint is the point with one weight on itself.
Pose blend shapes add ``(sum_k w_k R_k) posedirs_a dR_a / d theta_a``. Shape: the rest joints
and vertices are linear in ``betas``; posed joints follow
``p_k = p_parent + R_parent (J_k - J_parent)``.
Detector keypoints are a fixed linear map of ``[joints, keypoint vertices]`` (``body_keypoints``).
"""

from dataclasses import dataclass
from functools import cache

import torch
from smplx.lbs import batch_rigid_transform
from torch import Tensor

from slahmr_opt.body.keypoints import (
    NUM_BODY_POSE_JOINTS,
    NUM_JOINTS,
    NUM_KEYPOINT_VERTICES,
    SMPL_PARENTS,
    body_keypoints,
)
from slahmr_opt.body.model import BodyModel
from slahmr_opt.body.native import NativeBodyModel
from slahmr_opt.geometry.rotations import rotvec_to_rotmat

#: Joints with an optimized rotation: the root, then the 21 body joints.
NUM_ROTATING = NUM_BODY_POSE_JOINTS + 1
#: Below this angle (radians) ``J_r`` uses its Taylor series (the closed form cancels badly).
SMALL_ANGLE = 0.5


@dataclass
class PointJacobians:
    """Body points and their Jacobians (``None`` where not asked for).

    Attributes:
        points: (N, Q, 3) points in the world frame, metres (``trans`` applied).
        root_orient: (N, Q, 3, 3) d points / d root axis-angle.
        pose_body: (N, Q, 3, 63) d points / d body axis-angles.
        betas: (N, Q, 3, B) d points / d shape coefficients.

    ``d points / d trans`` is the identity for every point.
    """

    points: Tensor
    root_orient: Tensor | None = None
    pose_body: Tensor | None = None
    betas: Tensor | None = None


def supports_analytic_jacobians(body: BodyModel) -> bool:
    """True for backends whose points ``body_point_jacobians`` can differentiate."""
    return isinstance(body, NativeBodyModel)


def skew(v: Tensor) -> Tensor:
    """(..., 3, 3) cross-product matrices ``[v]_x`` of vectors (..., 3)."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape, 3)


def so3_right_jacobian(aa: Tensor) -> Tensor:
    """(..., 3, 3) right Jacobian of the SO(3) exponential at axis-angles (..., 3).

    ``exp(theta + d) = exp(theta) exp(J_r(theta) d)`` to first order, with
    ``J_r = I - (1 - cos t) / t^2 [theta]_x + (t - sin t) / t^3 [theta]_x^2``, ``t = |theta|``.
    The coefficients use ``1 - cos t = 2 sin^2(t / 2)`` and, below ``SMALL_ANGLE``, the Taylor
    series of ``(t - sin t) / t^3``, so they are accurate down to and at ``t = 0``.
    """
    t2 = aa.square().sum(-1)
    t = t2.sqrt()
    small = t < SMALL_ANGLE
    t_safe = torch.where(small, torch.ones_like(t), t)
    sinc_half = torch.sinc(t / (2 * torch.pi))  # sin(t / 2) / (t / 2), exact at 0
    a = 0.5 * sinc_half.square()
    series = 1 / 6 - t2 / 120 + t2.square() / 5040 - t2.pow(3) / 362880 + t2.pow(4) / 39916800
    b = torch.where(small, series, (t_safe - torch.sin(t_safe)) / t_safe.pow(3))
    K = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye - a[..., None, None] * K + b[..., None, None] * (K @ K)


@cache
def _subtree() -> Tensor:
    """(24, 24) bool: ``S[a, k]`` is True when joint k is a or below a."""
    S = torch.eye(NUM_JOINTS, dtype=torch.bool)
    for k in range(1, NUM_JOINTS):  # parents come before children
        S[:, k] |= S[:, SMPL_PARENTS[k]]
    return S


@cache
def keypoint_matrix(fmt: str) -> Tensor:
    """(K, 35) float64 map from ``[joints (24), keypoint vertices (11)]`` to detector keypoints
    (``body_keypoints`` with the hip fix is linear in its inputs)."""
    ns = NUM_JOINTS + NUM_KEYPOINT_VERTICES
    basis = torch.eye(ns, dtype=torch.float64)[:, :, None].expand(ns, ns, 3)
    out = body_keypoints(basis[:, :NUM_JOINTS], basis[:, NUM_JOINTS:], fmt)  # (35, K, 3)
    return out[..., 0].T.contiguous()


def _shape_jacobians(body: NativeBodyModel, R: Tensor) -> tuple[Tensor, Tensor]:
    """d posed joints / d betas (N, 24, 3, B) and ``R_k dJ_k / d betas`` (N, 24, 3, B)."""
    dJ = body.J_shapedirs  # (24, 3, B)
    parents = list(SMPL_PARENTS)
    dJ_rel = torch.cat([dJ[:1], dJ[1:] - dJ[parents[1:]]])  # (24, 3, B)
    R_par = torch.cat(
        [torch.eye(3, dtype=R.dtype, device=R.device).expand(R.shape[0], 1, 3, 3),
         R[:, parents[1:]]], dim=1)  # fmt: skip
    E = R_par @ dJ_rel  # (N, 24, 3, B): each bone's contribution
    ancestors = _subtree().T.to(R.dtype)  # [k, a]: a is k or above k
    D = torch.einsum("ka,nacb->nkcb", ancestors, E)
    return D, R @ dJ


def body_point_jacobians(
    body: NativeBodyModel,
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
    points: str | int,
    wrt: frozenset[str] | set[str] = frozenset({"root_orient", "pose_body", "betas"}),
) -> PointJacobians:
    """Body points and their analytic Jacobians, N bodies at once.

    Args:
        body: native body model.
        root_orient: (N, 3) axis-angle. trans: (N, 3) metres. pose_body: (N, 63) axis-angle.
        betas: (N, B'), B' <= ``body.num_betas``.
        points: a keypoint format (``"coco17"``, ``"op25"``, hip fix applied, as
            ``BodyModel.keypoints``) or J, the number of leading SMPL joints.
        wrt: which of ``root_orient``, ``pose_body``, ``betas`` to differentiate.
    Returns:
        ``PointJacobians`` in the body model's dtype; Q = K or J.
    """
    dtype = body.dtype
    n = root_orient.shape[0]
    nb = betas.shape[-1]
    betas = torch.nn.functional.pad(betas.to(dtype), (0, body.num_betas - nb))
    aa = torch.cat([root_orient.to(dtype)[:, None], pose_body.to(dtype).reshape(n, -1, 3)], 1)
    rot_local = rotvec_to_rotmat(aa)  # (N, 22, 3, 3)
    eye = torch.eye(3, dtype=dtype, device=aa.device)
    rot_all = torch.cat([rot_local, eye.expand(n, NUM_JOINTS - NUM_ROTATING, 3, 3)], 1)
    rest_joints = body.J_template + torch.einsum("nb,jcb->njc", betas, body.J_shapedirs)
    joints, rel = batch_rigid_transform(rot_all, rest_joints, body.parents, dtype=dtype)
    R = rel[..., :3, :3]  # (N, 24, 3, 3) world rotations
    S = _subtree()[:NUM_ROTATING].to(dtype)  # (22, 24)
    use_vertices = isinstance(points, str)
    if use_vertices:
        v, xk, T_rot = _keypoint_vertices(body, betas, rot_local, rel)
        kp_verts = torch.einsum("mk,nmkc->nmc", body.kp_weights, xk)
        L = keypoint_matrix(points).to(dtype=dtype, device=aa.device)  # (K, 35)
        out = PointJacobians((L @ torch.cat([joints, kp_verts], 1)) + trans.to(dtype)[:, None])
    else:
        L = None
        out = PointJacobians(joints[:, :points] + trans.to(dtype)[:, None])

    if wrt & {"root_orient", "pose_body"}:
        # Rotating joints a needed: the root alone, or the root and the 21 body joints.
        na = NUM_ROTATING if "pose_body" in wrt else 1
        # s[n, q, a]: sum over the subtree of a of w_k (x_k - p_a), for joints then vertices.
        p_a = joints[:, :na]
        nq = NUM_JOINTS if use_vertices else points
        s = S[:na, :nq].T[None, :, :, None] * (joints[:, :nq, None] - p_a[:, None])
        if use_vertices:
            SW = body.kp_weights[:, None, :] * S[None, :na]  # (11, na, 24)
            s_v = (
                torch.einsum("mak,nmkc->nmac", SW, xk) - SW.sum(-1)[None, :, :, None] * p_a[:, None]
            )
            s = torch.einsum("qs,nsac->nqac", L, torch.cat([s, s_v], 1))
        A = R[:, :na] @ so3_right_jacobian(aa[:, :na])  # (N, na, 3, 3)
        d_rot = _cross_columns(A, s)  # (N, Q, 3, na, 3): -[s]_x A per joint
        if use_vertices and body.kp_posedirs is not None and "pose_body" in wrt:
            d_rot[..., 1:, :] += _pose_blend_jacobian(body, aa, rot_local, T_rot, L, v.shape[1])
        d_rot = d_rot.flatten(-2)  # (N, Q, 3, 3 na): root columns, then the body's
        if "root_orient" in wrt:
            out.root_orient = d_rot[..., :3]
        if "pose_body" in wrt:
            out.pose_body = d_rot[..., 3:]
    if "betas" in wrt:
        D, RdJ = _shape_jacobians(body, R)  # (N, 24, 3, B) each
        if use_vertices:
            W = body.kp_weights  # (11, 24)
            d_v = T_rot @ body.kp_shapedirs + torch.einsum("mk,nkcb->nmcb", W, D - RdJ)
            out.betas = torch.einsum("qs,nscb->nqcb", L, torch.cat([D, d_v], 1))
        else:
            out.betas = D[:, :points]
        out.betas = out.betas[..., :nb]
    return out


def _cross_columns(A: Tensor, s: Tensor) -> Tensor:
    """``-[s_a]_x A_a`` for every point and joint, laid out (N, Q, 3, na, 3) so that the last two
    axes flatten into the ``[root, body pose]`` columns. Elementwise (columns ``A_j x s``): much
    faster than batched 3 x 3 products.

    Args:
        A: (N, na, 3, 3) ``R_a J_r(theta_a)``; s: (N, Q, na, 3).
    """
    sx, sy, sz = (s[..., i, None] for i in range(3))  # (N, Q, na, 1)
    ax, ay, az = (A[:, None, :, i] for i in range(3))  # rows of A: (N, 1, na, 3)
    return torch.stack([ay * sz - az * sy, az * sx - ax * sz, ax * sy - ay * sx], -3)


def _keypoint_vertices(
    body: NativeBodyModel, betas: Tensor, rot_local: Tensor, rel: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Rest keypoint vertices ``v`` (N, 11, 3), their per-joint posed copies ``x_k = G_k v``
    (N, 11, 24, 3) and the blended rotations ``sum_k w_k R_k`` (N, 11, 3, 3)."""
    n = betas.shape[0]
    v = body.kp_template + torch.einsum("nb,mcb->nmc", betas, body.kp_shapedirs)
    if body.kp_posedirs is not None:
        eye = torch.eye(3, dtype=rot_local.dtype, device=rot_local.device)
        fixed = eye.new_zeros(n, NUM_JOINTS - NUM_ROTATING, 3, 3)  # hand joints: identity
        feature = torch.cat([rot_local[:, 1:] - eye, fixed], 1)
        v = v + (feature.reshape(n, -1) @ body.kp_posedirs).reshape(n, -1, 3)
    R, t = rel[..., :3, :3], rel[..., :3, 3]
    xk = torch.einsum("nkij,nmj->nmki", R, v) + t[:, None]
    T_rot = torch.einsum("mk,nkij->nmij", body.kp_weights, R)
    return v, xk, T_rot


def _pose_blend_jacobian(
    body: NativeBodyModel, aa: Tensor, rot_local: Tensor, T_rot: Tensor, L: Tensor, nv: int
) -> Tensor:
    """(N, K, 3, 21, 3) pose-blend-shape part of d keypoints / d body axis-angles."""
    n = aa.shape[0]
    body_aa, body_rot = aa[:, 1:], rot_local[:, 1:]  # (N, 21, 3), (N, 21, 3, 3)
    Jr = so3_right_jacobian(body_aa)
    # dR / d theta_d = R [J_r e_d]_x, as (N, 21, 9, 3): entries (i, j) flattened, column d.
    dR = body_rot[:, :, None] @ skew(Jr.transpose(-1, -2))  # (N, 21, 3(d), 3, 3)
    dR = dR.permute(0, 1, 3, 4, 2).reshape(n, NUM_BODY_POSE_JOINTS, 9, 3)
    P = body.kp_posedirs.reshape(NUM_JOINTS - 1, 9, nv, 3)[:NUM_BODY_POSE_JOINTS]
    d_v = torch.einsum("aemc,naed->nmacd", P, dR)  # (N, 11, 21, 3, 3)
    d_x = T_rot[:, :, None] @ d_v  # (N, 11, 21, 3, 3)
    return torch.einsum("qm,nmacd->nqcad", L[:, NUM_JOINTS:], d_x)
