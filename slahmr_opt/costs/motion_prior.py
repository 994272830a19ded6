"""The learned motion prior (``slahmr_priors.motion_cvae``) as local factors over frame triples.

One element per person and window of frames (t-2, t-1, t) inside a track: the CVAE's
least-squares residual of the transition ``s_{t-1} -> s_t`` (``MotionCVAE.transition_residual``,
the negative log-density of the transition at the posterior mean, 48 + 204 entries), through a
Geman-McClure kernel on its norm (``costs.motion_prior_sigma``; ``costs.robust``), so that a
transition far from the training data (a walk backwards, a kick) costs at most ``sigma^2`` and
is not dragged towards the motions the prior knows, and times a per-window ``scale`` (the
evidence guard lowers one person's prior weight through it, ``stages.evidence``). Its states
read frames t-2, t-1 and t only, so the Gauss-Newton system stays block-banded in time: no
trajectory roll-out.

The states are computed in the floor's frame F (``floor_ref``, world-to-F: y up along the floor
normal, the floor at y = 0, as the prior was trained); the frame is fixed when the term is built
(the floor estimated before the motion stage), so this term does not move the floor.

Analytic Jacobian: the state is affine in the window's joints (given the heading of frame t-1),
so ``d state / d joints`` is a fixed combination of the heading rotation, chained with the body's
analytic joint Jacobians (``body.jacobian``); the state's remaining dependence on the three root
orientations (9 numbers) is taken in forward mode; the CVAE's own Jacobians come from
``MotionCVAE.transition_residual_and_jacobian``.
"""

from functools import partial
from pathlib import Path

import torch
from torch import Tensor
from torch.func import jvp

from slahmr_opt.body import BodyModel
from slahmr_opt.body.jacobian import (
    body_point_jacobians,
    skew,
    so3_right_jacobian,
    supports_analytic_jacobians,
)
from slahmr_opt.costs.kinematics import world_joints
from slahmr_opt.costs.robust import gmof_vector_jacobian, gmof_vector_residual
from slahmr_opt.costs.smoothness import track_windows, window_inputs
from slahmr_opt.costs.term import Term
from slahmr_opt.errors import InputError
from slahmr_priors.motion_cvae.model import SHIPPED, MotionCVAE
from slahmr_priors.motion_cvae.state import (
    JOINTS,
    JOINTS_VEL,
    NUM_JOINTS,
    POSE,
    STATE_DIM,
    axis_angle_to_matrix,
    heading_frame,
    states_from_rotations,
)

#: Frames of one factor (t-2, t-1, t).
NUM_FRAMES = 3
#: Elements per batch of the analytic Jacobian.
JACOBIAN_CHUNK = 32
#: Per-frame variable columns of the Jacobian: root_orient, trans, pose_body.
_FRAME_COLS = {"root_orient": slice(0, 3), "trans": slice(3, 6), "pose_body": slice(6, 69)}


def _split_ref(ref: Tensor) -> tuple[Tensor, Tensor]:
    return ref[:, :9].reshape(-1, 3, 3), ref[:, 9:12]


def _states_in_floor_frame(rot: Tensor, pose: Tensor, joints: Tensor, R_F: Tensor, t_F: Tensor,
                           fps: float) -> Tensor:  # fmt: skip
    """(N, 2, 204) ``[prev, cur]`` of windows: world root rotations (N, 3, 3, 3), poses
    (N, 3, 63), world joints (N, 3, 22, 3), world-to-F rotation (N, 3, 3) and translation (N, 3)."""
    rot_f = R_F[:, None] @ rot
    joints_f = torch.einsum("nij,nfkj->nfki", R_F, joints) + t_F[:, None, None]
    tr = states_from_rotations(rot_f, pose, joints_f, fps)
    return torch.stack([tr.prev[:, 0], tr.cur[:, 0]], 1)


def _window(kw: dict[str, Tensor], var: str) -> Tensor:
    return torch.stack([kw[f"{var}{k}"] for k in range(NUM_FRAMES)], 1)


def motion_prior_residual(
    *, body: BodyModel, prior: MotionCVAE, fps: float, sigma: float, betas: Tensor, ref: Tensor,
    scale: Tensor, **kw: Tensor,
) -> Tensor:  # fmt: skip
    """(N, L + D) robust transition residuals of windows (module docstring); ``kw`` holds
    ``root_orient{k}``, ``trans{k}``, ``pose_body{k}`` (N, 3 / 3 / 63) of frames k = 0, 1, 2;
    ``ref`` (N, 12) the world-to-F rotation (row-major) and translation; ``scale`` (N, 1) each
    window's factor (the person's prior weight is ``weight * scale^2``)."""
    joints = torch.stack(
        [
            world_joints(
                body, NUM_JOINTS, kw[f"root_orient{k}"], kw[f"trans{k}"], kw[f"pose_body{k}"], betas
            )  # fmt: skip
            for k in range(NUM_FRAMES)
        ],
        1,
    )
    rot = axis_angle_to_matrix(_window(kw, "root_orient"))
    states = _states_in_floor_frame(rot, _window(kw, "pose_body"), joints, *_split_ref(ref), fps)
    r = prior.transition_residual(states[:, 0], states[:, 1])
    return scale * (gmof_vector_residual(r, sigma) if sigma > 0 else r)


def _joint_coefficients(fps: float, dtype, device) -> Tensor:
    """(2, 2, 3) coefficient of frame f's joint in ``[prev, cur]``'s ``[joints, joints_vel]``
    part, before the heading rotation (the pelvis origin is handled apart)."""
    a = torch.zeros(2, 2, NUM_FRAMES, dtype=dtype, device=device)
    a[0, 0, 1] = a[1, 0, 2] = 1.0
    a[0, 1, 1], a[0, 1, 0] = fps, -fps
    a[1, 1, 2], a[1, 1, 1] = fps, -fps
    return a


def motion_prior_jacobian(
    wrt: frozenset[str], *, body: BodyModel, prior: MotionCVAE, fps: float, sigma: float,
    betas: Tensor, ref: Tensor, scale: Tensor, **kw: Tensor,
) -> tuple[Tensor, dict[str, Tensor]]:  # fmt: skip
    """``motion_prior_residual`` (N, L + D) and its Jacobians (N, L + D, n) (module docstring),
    in chunks of ``JACOBIAN_CHUNK`` elements: the intermediate blocks are ten times the size of
    the result, and small batches stay in cache."""
    n = betas.shape[0]
    chunks = [slice(a, a + JACOBIAN_CHUNK) for a in range(0, n, JACOBIAN_CHUNK)]
    parts = [
        _jacobian_chunk(wrt, body, prior, fps, betas[s], ref[s], {k: v[s] for k, v in kw.items()})
        for s in chunks
    ]
    r = torch.cat([p[0] for p in parts])
    jac = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
    if sigma > 0:
        jac = {k: gmof_vector_jacobian(r, j, sigma) for k, j in jac.items()}
        r = gmof_vector_residual(r, sigma)
    return scale * r, {k: scale[..., None] * j for k, j in jac.items()}


def _jacobian_chunk(wrt, body, prior, fps, betas, ref, kw):
    n, nf = betas.shape[0], NUM_FRAMES
    R_F, t_F = _split_ref(ref)
    body_wrt = {"root_orient", "pose_body"} | ({"betas"} if "betas" in wrt else set())
    stacked = {v: torch.cat([kw[f"{v}{k}"] for k in range(nf)]) for v in _FRAME_COLS}
    pts = body_point_jacobians(
        body, stacked["root_orient"], stacked["trans"], stacked["pose_body"],
        betas.repeat(nf, 1), NUM_JOINTS, wrt=body_wrt,
    )  # fmt: skip
    dtype = pts.points.dtype

    def frames(x: Tensor) -> Tensor:  # (3n, ...) -> (n, 3, ...)
        return x.reshape(nf, n, *x.shape[1:]).transpose(0, 1)

    joints = frames(pts.points)  # (n, 3, 22, 3)
    eye3 = torch.eye(3, dtype=dtype, device=joints.device)
    parts = [frames(pts.root_orient), eye3.expand(n, nf, NUM_JOINTS, 3, 3), frames(pts.pose_body)]
    if "betas" in body_wrt:
        parts.append(frames(pts.betas))
    d_joints = torch.cat(parts, -1)  # (n, 3, 22, 3, V): joints by [root, trans, pose(, betas)]
    V = d_joints.shape[-1]

    rot = axis_angle_to_matrix(_window(kw, "root_orient").to(dtype))
    pose = _window(kw, "pose_body").to(dtype)
    R_F, t_F = R_F.to(dtype), t_F.to(dtype)
    states = _states_in_floor_frame(rot, pose, joints, R_F, t_F, fps)

    # Joints enter linearly: H R_F dJ, H the heading rotation of frame 1 (t-1) in F.
    H = heading_frame(R_F @ rot[:, 1])
    C = H @ R_F  # (n, 3, 3): world to canonical
    c_dj = torch.einsum("nij,nfkjv->nfkiv", C, d_joints)
    coeff = _joint_coefficients(fps, dtype, joints.device)
    lin = torch.einsum("spf,nfkiv->nspkifv", coeff, c_dj)  # (n, 2, 2, 22, 3, 3, V)
    # The origin is the floor point under frame 1's pelvis: positions lose C P dJ_pelvis.
    proj = torch.diag(torch.tensor([1.0, 0.0, 1.0], dtype=dtype, device=joints.device))
    pelvis = torch.einsum("nij,jk,nkv->niv", H, proj, torch.einsum("nij,njv->niv", R_F,
                                                                   d_joints[:, 1, 0]))  # fmt: skip
    lin[:, :, 0, :, :, 1] -= pelvis[:, None, None]
    d_states = joints.new_zeros(n, 2, STATE_DIM, nf, V)
    d_states[:, :, JOINTS] = lin[:, :, 0].reshape(n, 2, 3 * NUM_JOINTS, nf, V)
    d_states[:, :, JOINTS_VEL] = lin[:, :, 1].reshape(n, 2, 3 * NUM_JOINTS, nf, V)
    eye63 = torch.eye(63, dtype=dtype, device=joints.device)
    d_states[:, 0, POSE, 1, _FRAME_COLS["pose_body"]] += eye63
    d_states[:, 1, POSE, 2, _FRAME_COLS["pose_body"]] += eye63

    # Root orientations beyond the joints (rotation, angular velocity, heading): forward mode
    # through the states, one tangent per axis-angle entry of the window (9) as a batch of 9 n
    # windows; the rotations' own derivatives are analytic, dR/da_j = R [J_r e_j]_x (forward AD
    # through Rodrigues' formula and vmap over jacfwd both fall back to slow decompositions).
    d_rotmat = rot[:, :, None] @ skew(so3_right_jacobian(_window(kw, "root_orient").to(dtype))
                                      .transpose(-1, -2))  # (n, 3 frames, 3, 3, 3)  # fmt: skip
    tangents = rot.new_zeros(NUM_FRAMES, 3, n, NUM_FRAMES, 3, 3)
    for k in range(NUM_FRAMES):
        tangents[k, :, :, k] = d_rotmat[:, k].transpose(0, 1)

    def rotation_part(r: Tensor) -> Tensor:  # (9 n, 3, 3, 3) -> (9 n, 2, 204)
        rep = lambda x: x.expand(9, *x.shape).flatten(0, 1)  # noqa: E731
        return _states_in_floor_frame(r, rep(pose), rep(joints), rep(R_F), rep(t_F), fps)

    d_rot = jvp(rotation_part, (rot.repeat(9, 1, 1, 1),), (tangents.flatten(0, 2),))[1]
    d_rot = d_rot.unflatten(0, (9, n)).permute(1, 2, 3, 0).unflatten(-1, (3, 3))
    d_states[..., _FRAME_COLS["root_orient"]] += d_rot

    residual, jac_prev, jac_cur = prior.transition_residual_and_jacobian(states[:, 0], states[:, 1])
    # prev reads frames 0-1 and cur frames 1-2 (of t-2, t-1, t): skip the zero blocks.
    jac = residual.new_zeros(n, residual.shape[-1], nf, V)
    jac[:, :, :2] += (jac_prev @ d_states[:, 0, :, :2].flatten(-2)).unflatten(-1, (2, V))
    jac[:, :, 1:] += (jac_cur @ d_states[:, 1, :, 1:].flatten(-2)).unflatten(-1, (2, V))
    out = {}
    for k in range(nf):
        for var, cols in _FRAME_COLS.items():
            if f"{var}{k}" in wrt:
                out[f"{var}{k}"] = jac[:, :, k, cols]
    if "betas" in wrt:
        out["betas"] = jac[..., _FRAME_COLS["pose_body"].stop :].sum(2)
    return residual, out


def load_motion_prior(path: str | None) -> MotionCVAE:
    """The CVAE of the ``motion_prior`` term and of the ``cvae`` contact source.

    Args:
        path: weights file (``costs.motion_prior_path``); None loads the shipped one.
    """
    file = Path(path) if path else SHIPPED
    if not file.exists():
        raise InputError(file, "motion prior file not found (costs.motion_prior_path)")
    try:
        return MotionCVAE.load(file)
    except Exception as exc:  # torch.load's and load_state_dict's errors span many types
        kind = type(exc).__name__
        raise InputError(file, f"not a motion prior weights file ({kind}; "
                               "python -m slahmr_priors.motion_cvae.train writes them)") from exc


def build_motion_prior_term(
    track_mask: Tensor, body: BodyModel, prior: MotionCVAE, floor_ref: Tensor, fps: float,
    dtype: torch.dtype, sigma: float = 0.0,
) -> Term:  # fmt: skip
    """The ``motion_prior`` term over every window of 3 frames inside a track.

    Args:
        track_mask: (P, T) person-frames that exist.
        prior: the CVAE (moved to ``dtype`` here).
        floor_ref: (4, 4) world-to-F transform of the floor (``init.floor.floor_reference``).
        fps: frame rate of the observations.
        sigma: Geman-McClure scale of each window's residual norm (``costs.robust``): a window
            costs at most ``sigma^2``; 0 keeps the plain squares.
    """
    prior = prior.to(dtype)
    person, frame = track_windows(track_mask, NUM_FRAMES)
    ref = torch.cat([floor_ref[:3, :3].reshape(9), floor_ref[:3, 3]]).to(dtype)
    options = dict(body=body, prior=prior, fps=fps, sigma=float(sigma))
    return Term(
        name="motion_prior",
        fn=partial(motion_prior_residual, **options),
        inputs=window_inputs(NUM_FRAMES),
        person=person,
        frame=frame,
        dim=prior.latent + STATE_DIM,
        data={
            "ref": ref.expand(len(person), -1).clone(),
            "scale": torch.ones(len(person), 1, dtype=dtype),
        },
        jac=(
            partial(motion_prior_jacobian, **options)
            if supports_analytic_jacobians(body)
            else None
        ),
    )


@torch.no_grad()
def cvae_contacts(
    joints: Tensor, root_orient: Tensor, pose_body: Tensor, track_mask: Tensor,
    floor_ref: Tensor, prior: MotionCVAE, fps: float,
) -> Tensor:  # fmt: skip
    """(P, T, 4) contact probabilities of SMPL joints 7, 8, 10, 11 from the CVAE's contact head,
    decoded at the posterior mean of each transition of the given bodies (world joints
    (P, T, >=22, 3), root orientations (P, T, 3), poses (P, T, 63)); the first two frames of a
    track, which end no transition, copy the third's; 0 outside ``track_mask``."""
    P, T = track_mask.shape
    out = joints.new_zeros(P, T, 4)
    R_F, t_F = floor_ref[:3, :3].to(joints), floor_ref[:3, 3].to(joints)
    prior = prior.to(joints.dtype)
    for p in range(P):
        frames = torch.nonzero(track_mask[p])[:, 0]
        if len(frames) < NUM_FRAMES:
            continue
        a, b = int(frames[0]), int(frames[-1]) + 1
        rot = R_F @ axis_angle_to_matrix(root_orient[p, a:b])
        pts = joints[p, a:b, :NUM_JOINTS] @ R_F.T + t_F
        tr = states_from_rotations(rot, pose_body[p, a:b], pts, fps)
        probs = prior.contact_probabilities(tr.prev, tr.cur)[:, :4]
        out[p, a + 2 : b] = probs
        out[p, a : a + 2] = probs[:1]
    return out * track_mask[..., None]
