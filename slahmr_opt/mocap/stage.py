"""The objective of fitting a body to 3D joint targets, as solver terms, and its two minimisers.

One objective, written as ``Term``s of the solver so that motion capture is fitted with the same
terms, loss history and solvers as video; ``fit_stage`` runs it with the stage runner (Theseus LM
by default, torch L-BFGS or Adam), ``fit_direct`` with one torch L-BFGS call over every frame of
every sequence at once (the fast path that builds ground truth and prior training data):

* ``mocap_joints`` (weight ``1 / sigma^2``), one element per frame: absolute joint errors
  ``sqrt(w_j) (J_j - X_j)``, bone vectors ``sqrt(w'_j) ((J_j - J_a) - (X_j - X_a))``, bone
  directions ``s sqrt(w_d) (unit(J_b - J_a) - unit(X_b - X_a))`` and joint rotations
  ``s sqrt(w_k) (R_k - R_target)`` (``s = direction_scale``) in one residual vector, so the body
  model runs once per frame;
* ``pose_prior`` (L2, weight ``pose_weight``) and ``shape_prior`` (``T |betas|^2``, weight
  ``shape_weight``) from ``slahmr_opt.costs.priors``;
* ``pose_smooth`` (weight ``smooth_weight``): ``pose_{t+1} - pose_t`` between consecutive frames.

Sequences are the solver's "people" (each has its own betas). In ``fit_stage`` Theseus gets
one vector per variable and frame; sequences longer than ``max_frames`` are solved in two
steps: the betas on every k-th frame (at most ``max_frames`` frames), then, with the betas
fixed, every frame in consecutive windows of at most ``max_frames`` frames (the smoothness term
between two windows is the only one left out). Several sequences or windows share one solve up
to ``max_frames`` frames.
"""

import logging
import math
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.body.keypoints import SMPL_PARENTS
from slahmr_opt.config import SolverConfig, StageConfig
from slahmr_opt.costs.kinematics import world_joints
from slahmr_opt.costs.priors import build_pose_prior_term, build_shape_term
from slahmr_opt.costs.term import Input, Term
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.history import LossHistory
from slahmr_opt.stages.problem import Problem
from slahmr_opt.stages.runner import StageResult, run_stage

logger = logging.getLogger(__name__)

VARIABLES = ["root_orient", "trans", "pose_body", "betas"]


@dataclass(frozen=True)
class JointTargets:
    """Per-frame 3D targets of one batch of sequences and the constant parts of the residual.

    Attributes:
        x: (N, 24, 3) joint targets, metres (N: all frames of all sequences).
        w: (24,) absolute-position weights. rel_j, rel_a: (R,) joints fitted relative to their
            anchors. rel_w: (R,). dir_ab: (D, 2) direction pairs. dir_w: (D,).
        rot_j: (K,) joints with rotation targets. rot_w: (K,). rot_x: (N, K, 3, 3) or None.
        direction_scale: metres of joint error that one radian of direction error costs.
    """

    x: Tensor
    w: Tensor
    rel_j: Tensor
    rel_a: Tensor
    rel_w: Tensor
    dir_ab: Tensor
    dir_w: Tensor
    rot_j: list[int]
    rot_w: Tensor
    rot_x: Tensor | None
    direction_scale: float


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _global_rotations(orient: Tensor, pose: Tensor, joints: list[int]) -> Tensor:
    """(N, K, 3, 3) global rotations of ``joints`` from (N, 3) orient and (N, 21, 3) pose."""
    rots = [rotvec_to_rotmat(orient)]
    for j in range(1, max(joints) + 1):
        rots.append(rots[SMPL_PARENTS[j]] @ rotvec_to_rotmat(pose[:, j - 1]))
    return torch.stack([rots[j] for j in joints], 1)


def joints3d_residual(
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
    x_abs: Tensor | None = None,
    x_rel: Tensor | None = None,
    x_dir: Tensor | None = None,
    x_rot: Tensor | None = None,
    *,
    body,
    spec: dict,
) -> Tensor:
    """(N, dim) 3D joint residuals of N frames (see the module docstring).

    Args:
        root_orient: (N, 3). trans: (N, 3). pose_body: (N, 63). betas: (N, B).
        x_abs: (N, A, 3) targets of the absolutely weighted joints ``spec["abs_j"]``.
        x_rel: (N, R, 3) target bone vectors. x_dir: (N, D, 3) target unit directions.
        x_rot: (N, K, 9) flattened target rotations. Each is None where it has no entries.
        body: the body model. spec: joint indices and square-rooted, scaled weights
            (``_residual_spec``).
    """
    j = world_joints(body, 24, root_orient, trans, pose_body, betas)
    parts = []
    if x_abs is not None:
        parts.append(spec["abs_sw"][:, None] * (j[:, spec["abs_j"]] - x_abs))
    if x_rel is not None:
        rel = j[:, spec["rel_j"]] - j[:, spec["rel_a"]] - x_rel
        parts.append(spec["rel_sw"][:, None] * rel)
    if x_dir is not None:
        dirs = _unit(j[:, spec["dir_b"]] - j[:, spec["dir_a"]]) - x_dir
        parts.append(spec["dir_sw"][:, None] * dirs)
    if x_rot is not None:
        rots = _global_rotations(root_orient, pose_body.reshape(-1, 21, 3), spec["rot_j"])
        parts.append(spec["rot_sw"][:, None] * (rots.flatten(-2) - x_rot))
    return torch.cat([p.flatten(-2) for p in parts], -1)


def _residual_spec(t: JointTargets, dtype: torch.dtype) -> dict:
    abs_j = torch.nonzero(t.w > 0).flatten()
    keep_rel = t.rel_w > 0
    keep_dir = t.dir_w > 0
    spec = {
        "abs_j": abs_j,
        "abs_sw": t.w[abs_j].sqrt(),
        "rel_j": t.rel_j[keep_rel],
        "rel_a": t.rel_a[keep_rel],
        "rel_sw": t.rel_w[keep_rel].sqrt(),
        "dir_a": t.dir_ab[keep_dir, 0],
        "dir_b": t.dir_ab[keep_dir, 1],
        "dir_sw": t.direction_scale * t.dir_w[keep_dir].sqrt(),
        "rot_j": list(t.rot_j),
        "rot_sw": t.direction_scale * t.rot_w.sqrt(),
    }
    return {k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in spec.items()}  # fmt: skip


def build_joints3d_term(targets: JointTargets, body, person: Tensor, frame: Tensor,
                        rows: Tensor) -> Term:  # fmt: skip
    """The ``mocap_joints`` term: one element per frame.

    Args:
        targets: targets of all frames. person, frame: (M,) element positions in the params
            layout. rows: (M,) their rows in ``targets.x``.
    """
    dtype = targets.x.dtype
    spec = _residual_spec(targets, dtype)
    x = targets.x[rows]
    keep_dir = targets.dir_w > 0
    dir_ab = targets.dir_ab[keep_dir]
    data = {
        "x_abs": x[:, spec["abs_j"]],
        "x_rel": x[:, spec["rel_j"]] - x[:, spec["rel_a"]],
        "x_dir": _unit(x[:, dir_ab[:, 1]] - x[:, dir_ab[:, 0]]),
    }
    if targets.rot_x is not None and spec["rot_j"]:
        data["x_rot"] = targets.rot_x[rows].flatten(-2)
    data = {k: v for k, v in data.items() if v.shape[1] > 0}
    dim = sum(v.shape[1] * v.shape[2] for v in data.values())
    return Term(
        name="mocap_joints",
        fn=partial(joints3d_residual, body=body, spec=spec),
        inputs=tuple(Input(v, v) for v in VARIABLES),
        person=person,
        frame=frame,
        dim=dim,
        data=data,
    )


def pose_smooth_residual(pose0: Tensor, pose1: Tensor) -> Tensor:
    """(N, 63) ``pose1 - pose0`` of (N, 63) body poses at consecutive frames."""
    return pose1 - pose0


def build_pose_smooth_term(track_mask: Tensor) -> Term:
    """``pose_smooth`` over every pair of consecutive frames inside a track."""
    pairs = track_mask[:, :-1] & track_mask[:, 1:]
    person, frame = torch.nonzero(pairs, as_tuple=True)
    return Term(
        name="pose_smooth",
        fn=pose_smooth_residual,
        inputs=(Input("pose0", "pose_body", 0), Input("pose1", "pose_body", 1)),
        person=person,
        frame=frame,
        dim=63,
    )


@dataclass
class StageSettings:
    """How the 3D-joint stage runs.

    Attributes:
        solver: the stage's solver settings (``kind``: ``lm``, ``lbfgs`` or ``adam``).
        max_frames: most frames (Theseus vectors per variable) in one solve; longer batches
            are solved in windows (module docstring).
        progress: show a progress bar per stage.
    """

    solver: SolverConfig = field(
        default_factory=lambda: SolverConfig(kind="lm", iterations=30, min_rel_decrease=1e-6)
    )
    max_frames: int = 1000
    progress: bool = False


def stage_config(settings, solver: SolverConfig, optimize: list[str]) -> StageConfig:
    """The ``StageConfig`` of a 3D-joint stage with ``FitSettings``' weights."""
    return StageConfig(name="mocap", optimize=list(optimize), weights=stage_weights(settings),
                       solver=solver)  # fmt: skip


def build_problem(targets: JointTargets, body, rows: Tensor, num_betas: int) -> Problem:
    """A ``Problem`` over frames ``rows`` (P, T) of ``targets`` (-1: padding)."""
    mask = rows >= 0
    person, frame = torch.nonzero(mask, as_tuple=True)
    terms = [
        build_joints3d_term(targets, body, person, frame, rows[person, frame]),
        build_pose_prior_term(mask, None),
        build_shape_term(mask, num_betas),
        build_pose_smooth_term(mask),
    ]
    dtype = targets.x.dtype
    for term in terms:
        term.data = {k: v.to(dtype) for k, v in term.data.items()}
    return Problem({t.name: t for t in terms}, mask, is_static=True)


def _layout(rows: Tensor, init: dict[str, Tensor], betas: Tensor) -> dict[str, Tensor]:
    """Stacked params (P, T, ...) for frames ``rows`` (P, T) from per-frame ``init`` (N, ...)."""
    safe = rows.clamp_min(0)
    out = {k: init[k][safe].clone() for k in ("root_orient", "trans", "pose_body")}
    out["betas"] = betas.clone()
    out["log_alpha"] = betas.new_zeros(1, 1)
    return out


def _scatter(params: dict[str, Tensor], rows: Tensor, into: dict[str, Tensor]) -> None:
    mask = rows >= 0
    for k in ("root_orient", "trans", "pose_body"):
        into[k][rows[mask]] = params[k][mask]


def _solve(stage: StageConfig, targets: JointTargets, body, rows: Tensor, init, betas,
           settings: StageSettings, history: LossHistory) -> StageResult:  # fmt: skip
    problem = build_problem(targets, body, rows, betas.shape[-1])
    params = _layout(rows, init, betas)
    return run_stage(stage, problem, params, history, progress=settings.progress)


def stage_weights(settings) -> dict[str, float]:
    """Term weights of the objective from ``fit.FitSettings``."""
    return {
        "mocap_joints": 1.0 / settings.sigma**2,
        "pose_prior": settings.pose_weight,
        "shape_prior": settings.shape_weight,
        "pose_smooth": settings.smooth_weight,
    }


def _sequence_rows(lengths: list[int]) -> Tensor:
    """(S, T_max) rows of each sequence's frames among all N frames, padded with -1."""
    starts = np.cumsum([0, *lengths])
    return _padded_rows([np.arange(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)])


def objective(fit_settings, targets: JointTargets, body, lengths: list[int],
              params: dict[str, Tensor]) -> Tensor:  # fmt: skip
    """The objective's value at per-frame ``params`` (``root_orient`` (N, 3), ``trans`` (N, 3),
    ``pose_body`` (N, 63), ``betas`` (S, B)); see ``fit_stage`` for the other arguments."""
    rows = _sequence_rows(lengths)
    problem = build_problem(targets, body, rows, params["betas"].shape[-1])
    with torch.no_grad():
        return problem.loss(_layout(rows, params, params["betas"]), stage_weights(fit_settings))[0]


def fit_direct(
    fit_settings, targets: JointTargets, body, lengths: list[int], init: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Minimise the objective over every frame of every sequence with one torch L-BFGS call
    (``fit_settings.iterations``, strong Wolfe line search), in the targets' dtype.

    Args: see ``fit_stage``.

    Returns:
        The fitted per-frame parameters (N, ...) and ``betas`` (S, B).
    """
    rows = _sequence_rows(lengths)
    problem = build_problem(targets, body, rows, init["betas"].shape[-1])
    params = _layout(rows, init, init["betas"])
    free = [params[k].requires_grad_() for k in VARIABLES]
    weights = stage_weights(fit_settings)
    opt = torch.optim.LBFGS(free, max_iter=fit_settings.iterations, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-10,
                            tolerance_change=1e-14)  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = problem.loss(params, weights)[0]
        loss.backward()
        return loss

    opt.step(closure)
    params = {k: v.detach() for k, v in params.items()}
    out = {k: v.detach().clone() for k, v in init.items()}
    _scatter(params, rows, out)
    out["betas"] = params["betas"]
    return out


def group_by_frames(lengths: list[int], max_frames: int) -> list[list[int]]:
    """Consecutive indices grouped so that each group holds at most ``max_frames`` frames (a
    single longer item makes a group of its own)."""
    groups, current, count = [], [], 0
    for i, n in enumerate(lengths):
        if current and count + n > max_frames:
            groups.append(current)
            current, count = [], 0
        current.append(i)
        count += n
    return groups + ([current] if current else [])


def _windows(a: int, b: int, size: int) -> list[np.ndarray]:
    """Frames a..b-1 in consecutive windows of at most ``size`` frames."""
    return [np.arange(lo, min(lo + size, b)) for lo in range(a, b, size)]


def fit_stage(
    fit_settings,
    targets: JointTargets,
    body,
    lengths: list[int],
    init: dict[str, Tensor],
    settings: StageSettings,
    history: LossHistory | None = None,
) -> tuple[dict[str, Tensor], LossHistory]:
    """Fit per-frame pose, orientation and translation and per-sequence betas with the stage.

    Sequences are solved together, as the people of one problem, up to ``settings.max_frames``
    frames per solve; longer sequences in two steps (module docstring).

    Args:
        fit_settings: ``fit.FitSettings`` (weights).
        targets: targets of all N frames, sequences one after another.
        lengths: frames of each sequence (sum N).
        init: starting ``root_orient`` (N, 3), ``trans`` (N, 3), ``pose_body`` (N, 63) and
            ``betas`` (S, B).
        settings: stage settings.
        history: history to append to (a new one if None).

    Returns:
        The fitted per-frame parameters (N, ...) and ``betas`` (S, B), and the history.
    """
    history = history or LossHistory()
    out = {k: v.detach().clone() for k, v in init.items()}
    starts = np.cumsum([0, *lengths])
    seqs = [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    size = settings.max_frames
    short = [s for s, n in enumerate(lengths) if n <= size]
    full = stage_config(fit_settings, settings.solver, VARIABLES)
    for g, group in enumerate(group_by_frames([lengths[s] for s in short], size)):
        ids = [short[i] for i in group]
        rows = _padded_rows([seqs[s] for s in ids])
        result = _solve(replace(full, name=f"mocap_{g}"), targets, body, rows, out,
                        out["betas"][ids], settings, history)  # fmt: skip
        _scatter(result.params, rows, out)
        out["betas"][ids] = result.params["betas"]
    windows = []
    for s in (s for s, n in enumerate(lengths) if n > size):
        # Step 1: the betas from every k-th frame (smoothing scaled to the larger steps).
        k = math.ceil(lengths[s] / size)
        sub = _padded_rows([seqs[s][::k]])
        coarse = replace(fit_settings, smooth_weight=fit_settings.smooth_weight / k**2)
        stage = replace(stage_config(coarse, settings.solver, VARIABLES), name=f"betas_{s}")
        result = _solve(stage, targets, body, sub, out, out["betas"][[s]], settings, history)
        _scatter(result.params, sub, out)
        out["betas"][s] = result.params["betas"][0]
        windows += [(s, w) for w in _windows(int(starts[s]), int(starts[s + 1]), size)]
    # Step 2: every frame of the long sequences, betas fixed, windows solved side by side.
    frames_only = stage_config(fit_settings, settings.solver, VARIABLES[:3])
    for g, group in enumerate(group_by_frames([len(w) for _, w in windows], size)):
        rows = _padded_rows([windows[i][1] for i in group])
        betas = out["betas"][[windows[i][0] for i in group]]
        result = _solve(replace(frames_only, name=f"windows_{g}"), targets, body, rows, out,
                        betas, settings, history)  # fmt: skip
        _scatter(result.params, rows, out)
    return out, history


def _padded_rows(groups: list[np.ndarray]) -> Tensor:
    """(P, T) row indices of each group, padded with -1."""
    rows = torch.full((len(groups), max(len(g) for g in groups)), -1, dtype=torch.long)
    for p, g in enumerate(groups):
        rows[p, : len(g)] = torch.from_numpy(g)
    return rows
