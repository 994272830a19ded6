"""Fit a body model to 3D joint targets: shared betas, per-frame pose, orientation, translation.

Used to turn motion capture into ground-truth bodies (``slahmr_opt.mocap.targets`` builds the
targets). The objective is a weighted sum of squared joint errors in metres, optionally with
bone-vector, bone-direction and joint-rotation terms for skeletons whose proportions differ from
the body model's, plus pose, shape and temporal smoothness regularisers; it is written once, as
solver terms (``slahmr_opt.mocap.stage``). ``FitSettings.solver`` picks how it is minimised:
``direct``, one torch L-BFGS call (strong Wolfe line search) over every frame of every sequence
in one batch; or ``lm`` / ``lbfgs``, the stage runner with Theseus LM or torch L-BFGS, with a
loss history.
"""

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.body.keypoints import SMPL_PARENTS
from slahmr_opt.config import SolverConfig
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.mocap.stage import JointTargets, StageSettings, fit_direct, fit_stage


@dataclass(frozen=True)
class RelativeTerms:
    """Data terms beyond absolute joint positions, over the same (T, 24, 3) targets ``X``.

    Attributes:
        anchors: (24,) int joint each joint is also fitted relative to (-1: none); residual
            ``(J_j - J_a) - (X_j - X_a)``.
        anchor_weights: (24,) weights of those residuals.
        directions: (D, 2) int joint pairs ``(a, b)``; residual ``unit(J_b - J_a) -
            unit(X_b - X_a)``, scaled by ``FitSettings.direction_scale``.
        direction_weights: (D,).
        rotation_joints: (K,) int joints whose global rotation (body frame to world) has
            targets ``R_target (T, K, 3, 3)``; residual ``R_j - R_target``, scaled by
            ``FitSettings.direction_scale``. Joint 0 (the pelvis) also sets the start.
        rotation_weights: (K,).
    """

    anchors: np.ndarray = field(default_factory=lambda: np.full(24, -1))
    anchor_weights: np.ndarray = field(default_factory=lambda: np.zeros(24))
    directions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    direction_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rotation_joints: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rotation_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class FitSettings:
    """Settings of ``fit_body_to_joints``.

    Attributes:
        num_betas: shape coefficients to fit (None: the model's ``num_betas``, else 10).
        iterations: L-BFGS iterations (one ``step`` call, strong Wolfe line search).
        sigma: metres of joint error that cost as much as one unit of the regularisers.
        direction_scale: metres of joint error that one radian of direction error costs.
        pose_weight: weight of ``|pose_body|^2`` per frame (radians).
        shape_weight: weight of ``|betas|^2`` per frame of a sequence (as in SLAHMR).
        smooth_weight: weight of ``|pose_t+1 - pose_t|^2`` between consecutive frames (divide
            by stride^2 for subsampled frames).
        dtype: float32 (faster) or float64 (the stage solvers always run in float64).
        solver: ``direct`` (one torch L-BFGS call of ``iterations`` on the batched objective),
            ``lm`` or ``lbfgs`` (the 3D-joint stage, ``slahmr_opt.mocap.stage``, run by
            the stage runner with Theseus LM or torch L-BFGS).
        stage_iterations: outer iterations of the stage solver (LM steps or L-BFGS steps of 20
            inner iterations).
        stage_max_frames: most frames in one stage solve (``mocap_stage.StageSettings``).
    """

    num_betas: int | None = None
    iterations: int = 200
    sigma: float = 0.01
    direction_scale: float = 0.2
    pose_weight: float = 1.0
    shape_weight: float = 0.1
    smooth_weight: float = 1.0
    dtype: torch.dtype = torch.float32
    solver: str = "direct"
    stage_iterations: int = 30
    stage_max_frames: int = 1000


@dataclass
class BodyFit:
    """A body fitted to one sequence of joint targets (numpy arrays, our world frame).

    Attributes:
        root_orient: (T, 3) axis-angle. trans: (T, 3) metres. pose_body: (T, 21, 3) axis-angle.
        betas: (B,) shared by all frames.
        joints: (T, 24, 3) the fitted body's joints, metres.
        joint_error_mm: (T, 24) distance to the targets in millimetres, NaN where the absolute
            weight is 0.
        residual_mm: (T,) mean of ``joint_error_mm`` over the other joints.
    """

    root_orient: np.ndarray
    trans: np.ndarray
    pose_body: np.ndarray
    betas: np.ndarray
    joints: np.ndarray
    joint_error_mm: np.ndarray
    residual_mm: np.ndarray


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _body_frames(joints: Tensor, known: Tensor) -> Tensor:
    """(..., 3, 3) body frames, columns (left, up, forward), from the hips and the spine.

    Args:
        joints: (..., 24, 3) joints or targets. known: (24,) bool; the hips must be known.
    """
    top = next((j for j in (12, 9, 6, 15) if known[j]), None)
    left = _unit(joints[..., 1, :] - joints[..., 2, :])
    if top is None:  # no spine target: assume an upright body (y up)
        up = torch.zeros_like(left) + torch.tensor([0.0, 1.0, 0.0], dtype=left.dtype)
    else:
        up = joints[..., top, :] - 0.5 * (joints[..., 1, :] + joints[..., 2, :])
    up = _unit(up - (up * left).sum(-1, keepdim=True) * left)
    return torch.stack([left, up, torch.linalg.cross(left, up)], -1)


# Joint -> the descendant whose target sets its initial swing (the head and toes start straight).
_AIM = {1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17,
        16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23}  # fmt: skip


def _swing(a: Tensor, b: Tensor) -> Tensor:
    """(T, 3) axis-angle of the smallest rotation turning directions a (T, 3) into b (T, 3)."""
    axis = torch.linalg.cross(_unit(a), _unit(b))
    sin = axis.norm(dim=-1, keepdim=True)
    return _unit(axis) * torch.atan2(sin, (_unit(a) * _unit(b)).sum(-1, keepdim=True))


def _initial_state(rest: Tensor, x: Tensor, known: Tensor, root: Tensor | None):
    """Root orientation and translation (T, 3) and body pose (T, 21, 3) to start from.

    The root matches the rest body's frame (hips and spine) to the targets' (or takes ``root``,
    (T, 3, 3), as it is); each bone then turns toward its child's target, twist-free.

    Args:
        rest: (T, 24, 3) rest-pose joints. x: (T, 24, 3) targets. known: (24,) bool.
    """
    rot = _body_frames(x, known) @ _body_frames(rest, known).mT if root is None else root
    # The root turns about the pelvis: joints = R (rest - pelvis) + pelvis + trans.
    posed = (rot[:, None] @ (rest - rest[:, :1])[..., None])[..., 0] + rest[:, :1]
    trans = 0.5 * (x[:, 1] + x[:, 2] - posed[:, 1] - posed[:, 2])
    pose = x.new_zeros(x.shape[0], 21, 3)
    rots = [rot]
    for j in range(1, 22):
        p, aim = SMPL_PARENTS[j], _AIM.get(j)
        if aim is not None and known[aim] and known[j]:
            want = (rots[p].mT @ (x[:, aim] - x[:, j])[..., None])[..., 0]
            pose[:, j - 1] = _swing(rest[:, aim] - rest[:, j], want)
        rots.append(rots[p] @ rotvec_to_rotmat(pose[:, j - 1]))
    return rotmat_to_rotvec(rot), trans, pose


SOLVERS = ("direct", "lm", "lbfgs")


class _Batch:
    """Targets and weights of one batched fit as tensors (the objective's ``JointTargets``)."""

    def __init__(self, model, targets, weights, terms: RelativeTerms, s: FitSettings, rots):
        dt = s.dtype
        self.model = model
        self.lengths = [len(t) for t in targets]
        self.group = torch.repeat_interleave(torch.arange(len(targets)), torch.tensor(self.lengths))
        x = torch.from_numpy(np.concatenate(targets)).to(dt)
        w = torch.as_tensor(weights, dtype=dt)
        if x.ndim != 3 or x.shape[1:] != (24, 3) or w.shape != (24,):
            raise ValueError(f"expected targets (T, 24, 3) and weights (24,), got "
                             f"{tuple(x.shape)} and {tuple(w.shape)}")  # fmt: skip
        rot_j = [int(j) for j in terms.rotation_joints]
        rot_x = None if rots is None else torch.from_numpy(np.concatenate(rots)).to(dt)
        if rot_x is not None and rot_x.shape[1:] != (len(rot_j), 3, 3):
            raise ValueError(f"expected rotation targets (T, {len(rot_j)}, 3, 3), got "
                             f"{tuple(rot_x.shape)}")  # fmt: skip
        rel_j = torch.from_numpy(np.flatnonzero(terms.anchors >= 0))
        self.targets = JointTargets(
            x=x, w=w, rel_j=rel_j, rel_a=torch.from_numpy(terms.anchors[rel_j.numpy()]),
            rel_w=torch.from_numpy(terms.anchor_weights[rel_j.numpy()]).to(dt),
            dir_ab=torch.from_numpy(terms.directions),
            dir_w=torch.from_numpy(terms.direction_weights).to(dt), rot_j=rot_j,
            rot_w=torch.from_numpy(terms.rotation_weights).to(dt),
            rot_x=rot_x if rot_j else None, direction_scale=s.direction_scale,
        )  # fmt: skip
        known = (w > 0) | (torch.from_numpy(terms.anchor_weights) > 0)
        known[self.targets.dir_ab[self.targets.dir_w > 0].flatten()] = True
        self.known = known

    def joints(self, orient, trans, pose, betas) -> Tensor:
        out = self.model(
            betas=betas[self.group], global_orient=orient, body_pose=pose, transl=trans
        )
        return out.joints[..., :24, :]

    def initial(self, num_betas: int) -> list[Tensor]:
        """Starting [orient, trans, pose, betas] (zero betas; see ``_initial_state``)."""
        x = self.targets.x
        betas = x.new_zeros(len(self.lengths), num_betas)
        zero3 = x.new_zeros(len(x), 3)
        rest = self.joints(zero3, zero3, x.new_zeros(len(x), 21, 3), betas)
        t = self.targets
        root = t.rot_x[:, t.rot_j.index(0)] if t.rot_x is not None and 0 in t.rot_j else None
        return [*_initial_state(rest, x, self.known, root), betas]


def _model_in(body_model, dtype: torch.dtype):
    """The body model in ``dtype`` (a converted copy if it is a module holding other floats)."""
    if isinstance(body_model, torch.nn.Module):
        tensors = (*body_model.parameters(), *body_model.buffers())
        if any(t.is_floating_point() and t.dtype != dtype for t in tensors):
            return copy.deepcopy(body_model).to(dtype)
    return body_model


def _minimise(batch: _Batch, variables: list[Tensor], s: FitSettings) -> list[Tensor]:
    """Minimise the objective (``mocap.stage``) from ``variables`` with the solver ``s`` names."""
    orient, trans, pose, betas = variables
    init = {"root_orient": orient, "trans": trans, "pose_body": pose.flatten(1), "betas": betas}
    if s.solver == "direct":
        out = fit_direct(s, batch.targets, batch.model, batch.lengths, init)
    else:
        solver = SolverConfig(kind=s.solver, iterations=s.stage_iterations)
        settings = StageSettings(solver=solver, max_frames=s.stage_max_frames)
        out, _ = fit_stage(s, batch.targets, batch.model, batch.lengths, init, settings)
    return [out["root_orient"], out["trans"], out["pose_body"].reshape(-1, 21, 3), out["betas"]]


def fit_sequences(
    body_model,
    joints_targets: list[np.ndarray],
    weights: np.ndarray,
    settings: FitSettings | None = None,
    terms: RelativeTerms | None = None,
    joint_rotations: list[np.ndarray] | None = None,
) -> list[BodyFit]:
    """Fit one body per sequence to joint targets, all sequences and frames in one batch (the
    stage solvers: in solves of at most ``settings.stage_max_frames`` frames).

    Each sequence gets its own betas (its performer); every frame its own root orientation,
    translation and body pose. Bone lengths that differ from the mocap skeleton's are absorbed
    by the betas (there is no separate scale); what they cannot absorb stays in the residual.
    Frames start from a per-frame torso alignment with every bone aimed at its target.

    Args:
        body_model: callable ``(betas=(N, B), global_orient=(N, 3), body_pose=(N, 21, 3),
            transl=(N, 3))`` returning an object with ``joints`` (N, >=24, 3), SMPL order.
        joints_targets: per sequence, (T_i, 24, 3) target joints in metres.
        weights: (24,) absolute-position weights (0 = unmapped).
        settings: fit settings (defaults if None).
        terms: relative and direction terms (None: absolute positions only).
        joint_rotations: per sequence, (T_i, K, 3, 3) global rotation targets of the joints
            ``terms.rotation_joints``, or None.

    Returns:
        One ``BodyFit`` per sequence.
    """
    s = settings or FitSettings()
    if s.solver not in SOLVERS:
        raise ValueError(f"FitSettings.solver must be one of {SOLVERS}, got {s.solver!r}")
    dtype = s.dtype if s.solver == "direct" else torch.float64
    model = _model_in(body_model, dtype)
    s_run = s if dtype == s.dtype else replace(s, dtype=dtype)
    batch = _Batch(model, joints_targets, weights, terms or RelativeTerms(), s_run,
                   joint_rotations)  # fmt: skip
    with torch.no_grad():
        variables = batch.initial(s.num_betas or getattr(body_model, "num_betas", 10))
    variables = _minimise(batch, variables, s_run)
    with torch.no_grad():
        joints = batch.joints(*variables)
        err = 1000.0 * (joints - batch.targets.x).norm(dim=-1)
        err[:, batch.targets.w == 0] = torch.nan
    orient, trans, pose, betas, joints, err = (
        v.detach().double().numpy() for v in (*variables, joints, err)
    )
    edges = np.cumsum([0, *batch.lengths])
    return [
        BodyFit(
            orient[a:b],
            trans[a:b],
            pose[a:b],
            betas[g],
            joints[a:b],
            err[a:b],
            np.nanmean(err[a:b], axis=1),
        )  # fmt: skip
        for g, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]


def fit_body_to_joints(
    body_model,
    joints_target: np.ndarray,
    weights: np.ndarray,
    settings: FitSettings | None = None,
    terms: RelativeTerms | None = None,
    joint_rotations: np.ndarray | None = None,
) -> BodyFit:
    """Fit shared betas and per-frame pose, orientation and translation to one joint sequence.

    Minimises ``sum_t sum_j w_j |J_tj - X_tj|^2 / sigma^2`` (plus the optional relative,
    direction and joint-rotation terms) ``+ pose, shape and temporal smoothness regularisers``
    with the solver ``settings.solver`` names (default: torch L-BFGS with strong Wolfe line
    search, all frames in one batch). See ``fit_sequences``.

    Args:
        body_model: see ``fit_sequences``.
        joints_target: (T, 24, 3) target joints, metres, SMPL order (e.g. ``smpl_targets``).
        weights: (24,) absolute-position weights (0 = unmapped).
        settings: fit settings (defaults if None).
        terms: relative and direction terms (e.g. ``relative_terms()`` for Bandai-Namco).
        joint_rotations: (T, K, 3, 3) global rotation targets of ``terms.rotation_joints``
            (e.g. ``joint_rotations`` for Bandai-Namco), or None.

    Returns:
        The fit: root_orient (T, 3), trans (T, 3), pose_body (T, 21, 3), betas (B,), fitted
        joints and residuals in millimetres.
    """
    rots = None if joint_rotations is None else [joint_rotations]
    return fit_sequences(body_model, [joints_target], weights, settings, terms, rots)[0]
