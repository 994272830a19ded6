"""Foot contacts and the floor (SLAHMR's ``contact_vel`` and ``contact_height`` losses, plus a
penetration hinge), on the shared floor plane (``slahmr_opt.init.floor``).

Contact probabilities ``c`` are given per person-frame for SMPL joints 7, 8, 10, 11 (left/right
ankle, left/right foot); each is applied to a point on the sole below it (left/right heel, left /
right big toe: the detector keypoints of ``op25``, the same surface points foot sliding is
measured on). Residuals:

* ``contact_slide`` (frame pair t, t+1): ``sqrt(c_t c_{t+1}) (x_{t+1} - x_t)`` per point (N, 12):
  a foot in contact does not move;
* ``contact_floor`` (person-frame): ``sqrt(c) (h(x) - h_rest)`` per point (N, 4): a foot in
  contact rests on the floor; ``h_rest`` is the point's height above the sole at rest, since
  heel and toe keypoints sit slightly inside the foot;
* ``floor_penetration`` (person-frame): ``min(h(x_k), 0)`` for every ``op25`` keypoint (N, 25).

``h`` is the signed height above the floor of ``floor`` (1, 3) in its reference frame ``ref``
(``floor.py``). Every residual has an analytic Jacobian (native body backend): the body points'
Jacobians (``body.jacobian``) times ``dh / dx = n`` (the floor normal), plus ``dh / dfloor``.
"""

from functools import cache, partial

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.body.jacobian import body_point_jacobians, supports_analytic_jacobians
from slahmr_opt.body.keypoints import FOOT_JOINTS, OP25_NAMES
from slahmr_opt.costs.kinematics import world_keypoints
from slahmr_opt.costs.term import PER_FRAME, Input, Term

#: SMPL joints that carry contact probabilities (left/right ankle, left/right foot).
CONTACT_JOINTS = FOOT_JOINTS
#: The ``op25`` keypoint on the sole under each of ``CONTACT_JOINTS``.
CONTACT_POINTS = tuple(OP25_NAMES.index(n) for n in ("LHeel", "RHeel", "LBigToe", "RBigToe"))
NUM_KEYPOINTS = len(OP25_NAMES)
BODY_WRT = frozenset({"root_orient", "pose_body", "betas"})


def floor_heights(points: Tensor, floor: Tensor, ref: Tensor) -> Tensor:
    """(N, Q) signed heights of points (N, Q, 3) above the floor ``floor`` (N, 3) given in the
    reference frame ``ref`` (N, 12): world-to-F rotation (9, row-major), then translation (3)."""
    R, t = ref[:, :9].reshape(-1, 3, 3), ref[:, 9:12]
    y = torch.einsum("nij,nqj->nqi", R, points) + t[:, None]
    a, b, c = floor[:, 0:1], floor[:, 1:2], floor[:, 2:3]
    s = torch.sqrt(1.0 + a**2 + b**2)
    return (y[..., 1] - a * y[..., 0] - b * y[..., 2] - c) / s


def _height_jacobians(points: Tensor, floor: Tensor, ref: Tensor):
    """Heights (N, Q), ``dh/dx`` (N, 3) (the world normal) and ``dh/dfloor`` (N, Q, 3)."""
    R, t = ref[:, :9].reshape(-1, 3, 3), ref[:, 9:12]
    y = torch.einsum("nij,nqj->nqi", R, points) + t[:, None]
    a, b = floor[:, 0:1], floor[:, 1:2]
    s = torch.sqrt(1.0 + a**2 + b**2)
    h = (y[..., 1] - a * y[..., 0] - b * y[..., 2] - floor[:, 2:3]) / s
    g = torch.stack([-a[:, 0], torch.ones_like(a[:, 0]), -b[:, 0]], -1)  # (N, 3)
    normal = torch.einsum("nji,nj->ni", R, g) / s
    d_floor = torch.stack(
        [-y[..., 0] / s - h * a / s**2, -y[..., 2] / s - h * b / s**2, (-1.0 / s).expand_as(h)], -1
    )
    return h, normal, d_floor


def _points(body: BodyModel, root_orient, trans, pose_body, betas) -> Tensor:
    return world_keypoints(body, "op25", root_orient, trans, pose_body, betas)


def contact_floor_residual(
    root_orient, trans, pose_body, betas, floor, ref, weight, rest, *, body: BodyModel
) -> Tensor:
    """(N, 4) ``sqrt(c) (h - h_rest)`` of the sole points; ``weight`` (N, 4) holds ``sqrt(c)``,
    ``rest`` (N, 4) the rest heights."""
    pts = _points(body, root_orient, trans, pose_body, betas)[:, list(CONTACT_POINTS)]
    return weight * (floor_heights(pts, floor, ref) - rest)


def floor_penetration_residual(
    root_orient, trans, pose_body, betas, floor, ref, *, body: BodyModel
) -> Tensor:
    """(N, 25) ``min(h, 0)`` of every ``op25`` keypoint."""
    pts = _points(body, root_orient, trans, pose_body, betas)
    return floor_heights(pts, floor, ref).clamp(max=0.0)


def contact_slide_residual(
    root_orient0, trans0, pose_body0, root_orient1, trans1, pose_body1, betas, weight, *,
    body: BodyModel,
) -> Tensor:  # fmt: skip
    """(N, 12) ``w (x_{t+1} - x_t)`` of the sole points; ``weight`` (N, 4) holds
    ``sqrt(c_t c_{t+1})``."""
    idx = list(CONTACT_POINTS)
    p0 = _points(body, root_orient0, trans0, pose_body0, betas)[:, idx]
    p1 = _points(body, root_orient1, trans1, pose_body1, betas)[:, idx]
    return (weight[..., None] * (p1 - p0)).flatten(-2)


def _body_jacobians(body, wrt, root_orient, trans, pose_body, betas, points):
    """Points (N, Q, 3) and ``{var: (N, Q, 3, n)}`` for the body variables in ``wrt``."""
    body_wrt = {v for v in BODY_WRT if v in wrt}
    pj = body_point_jacobians(body, root_orient, trans, pose_body, betas, "op25", wrt=body_wrt)
    idx = list(points)
    out = {v: getattr(pj, v)[:, idx] for v in body_wrt}
    if "trans" in wrt:
        eye = torch.eye(3, dtype=pj.points.dtype, device=pj.points.device)
        out["trans"] = eye.expand(pj.points.shape[0], len(idx), 3, 3)
    return pj.points[:, idx], out


def _height_residual_jacobian(body, wrt, root_orient, trans, pose_body, betas, floor, ref, points):
    """Heights (N, Q) of ``points`` and their Jacobians ``{var: (N, Q, n)}``."""
    pts, jac = _body_jacobians(body, wrt, root_orient, trans, pose_body, betas, points)
    h, normal, d_floor = _height_jacobians(pts, floor.to(pts), ref.to(pts))
    out = {v: torch.einsum("nqcm,nc->nqm", d, normal) for v, d in jac.items()}
    if "floor" in wrt:
        out["floor"] = d_floor
    return h, out


def contact_floor_jacobian(
    wrt, root_orient, trans, pose_body, betas, floor, ref, weight, rest, *, body: BodyModel
) -> tuple[Tensor, dict[str, Tensor]]:
    """``contact_floor_residual`` and its Jacobians (N, 4, n)."""
    h, jac = _height_residual_jacobian(
        body, wrt, root_orient, trans, pose_body, betas, floor, ref, CONTACT_POINTS
    )
    w = weight.to(h)
    return w * (h - rest), {k: w[..., None] * v for k, v in jac.items()}


def floor_penetration_jacobian(
    wrt, root_orient, trans, pose_body, betas, floor, ref, *, body: BodyModel
) -> tuple[Tensor, dict[str, Tensor]]:
    """``floor_penetration_residual`` and its Jacobians (N, 25, n): zero above the floor."""
    h, jac = _height_residual_jacobian(
        body, wrt, root_orient, trans, pose_body, betas, floor, ref, range(NUM_KEYPOINTS)
    )
    below = (h < 0).to(h)[..., None]
    return h.clamp(max=0.0), {k: below * v for k, v in jac.items()}


def contact_slide_jacobian(
    wrt, root_orient0, trans0, pose_body0, root_orient1, trans1, pose_body1, betas, weight, *,
    body: BodyModel,
) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
    """``contact_slide_residual`` and its Jacobians (N, 12, n); both frames' points come from
    one batched call."""
    n = betas.shape[0]
    frame_wrt = {v for v in PER_FRAME if f"{v}0" in wrt or f"{v}1" in wrt}
    if "betas" in wrt:
        frame_wrt.add("betas")
    pts, jac = _body_jacobians(
        body,
        frame_wrt,
        torch.cat([root_orient0, root_orient1]),
        torch.cat([trans0, trans1]),
        torch.cat([pose_body0, pose_body1]),
        betas.repeat(2, 1),
        CONTACT_POINTS,
    )
    w = weight.to(pts)[..., None, None]  # (N, 4, 1, 1)
    residual = (w[..., 0] * (pts[n:] - pts[:n])).flatten(-2)
    out = {}
    for var, d in jac.items():
        d0, d1 = d[:n], d[n:]
        if var == "betas":
            out["betas"] = (w * (d1 - d0)).flatten(1, 2)
            continue
        for k, (dk, sign) in enumerate(((d0, -1.0), (d1, 1.0))):
            if f"{var}{k}" in wrt:
                out[f"{var}{k}"] = (sign * w * dk).flatten(1, 2)
    return residual, out


@cache
def rest_heights(body: BodyModel) -> Tensor:
    """(4,) heights of ``CONTACT_POINTS`` above the lowest vertex of the rest body (mean shape),
    metres."""
    dt = body.dtype
    zero = torch.zeros(1, 3, dtype=dt)
    out = body(
        torch.zeros(1, body.num_betas, dtype=dt), zero, torch.zeros(1, 21, 3, dtype=dt), zero,
        return_vertices=True,
    )  # fmt: skip
    sole = out.vertices[0, :, 1].min()
    return (body.keypoints(out, "op25")[0, list(CONTACT_POINTS), 1] - sole).detach()


def build_contact_terms(
    track_mask: Tensor, body: BodyModel, contacts: Tensor, floor_ref: Tensor, dtype: torch.dtype
) -> list[Term]:
    """The three contact/floor terms.

    Args:
        track_mask: (P, T) person-frames that exist.
        contacts: (P, T, 4) contact probabilities of ``CONTACT_JOINTS``, in [0, 1].
        floor_ref: (4, 4) world-to-F transform of the floor parameterisation.
    Returns:
        ``[contact_slide, contact_floor, floor_penetration]``; the contact terms only have
        elements where some probability is positive.
    """
    analytic = supports_analytic_jacobians(body)
    contacts = contacts.to(dtype).clamp(0.0, 1.0) * track_mask[..., None]
    ref = torch.cat([floor_ref[:3, :3].reshape(9), floor_ref[:3, 3]]).to(dtype)
    body_inputs = tuple(Input(v, v) for v in PER_FRAME) + (Input("betas", "betas"),)
    floor_input = (Input("floor", "floor"),)

    pair = contacts[:, 1:] * contacts[:, :-1]
    person, frame = torch.nonzero(pair.sum(-1) > 0, as_tuple=True)
    slide = Term(
        name="contact_slide",
        fn=partial(contact_slide_residual, body=body),
        inputs=tuple(Input(f"{v}{k}", v, k) for k in range(2) for v in PER_FRAME)
        + (Input("betas", "betas"),),
        person=person,
        frame=frame,
        dim=3 * len(CONTACT_POINTS),
        data={"weight": pair[person, frame].sqrt()},
        jac=partial(contact_slide_jacobian, body=body) if analytic else None,
    )
    person, frame = torch.nonzero(contacts.sum(-1) > 0, as_tuple=True)
    m = len(person)
    on_floor = Term(
        name="contact_floor",
        fn=partial(contact_floor_residual, body=body),
        inputs=body_inputs + floor_input,
        person=person,
        frame=frame,
        dim=len(CONTACT_POINTS),
        data={
            "ref": ref.expand(m, -1).clone(),
            "weight": contacts[person, frame].sqrt(),
            "rest": rest_heights(body).to(dtype).expand(m, -1).clone(),
        },
        jac=partial(contact_floor_jacobian, body=body) if analytic else None,
    )
    person, frame = torch.nonzero(track_mask, as_tuple=True)
    penetration = Term(
        name="floor_penetration",
        fn=partial(floor_penetration_residual, body=body),
        inputs=body_inputs + floor_input,
        person=person,
        frame=frame,
        dim=NUM_KEYPOINTS,
        data={"ref": ref.expand(len(person), -1).clone()},
        jac=partial(floor_penetration_jacobian, body=body) if analytic else None,
    )
    return [slide, on_floor, penetration]
