"""Per-frame 3D body guesses from 2D keypoints alone, with the project's trained regressor.

``regress`` runs ``slahmr_priors.regressor`` over each track (resampled to the network's 30 fps and
back) and turns its output into camera-frame SMPL guesses for every frame of the track, occlusion
gaps included: root orientation and body pose from the network, the translation from the 2D
keypoints (linear least squares of the reprojection given the posed body, reweighted
against outliers). Its other outputs (up direction, heading-frame velocity, foot contacts,
shape) come back beside the guesses for the stages that can use them.
"""

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from pickle import UnpicklingError

import torch
from torch import Tensor

from slahmr_opt.body import BodyModel
from slahmr_opt.errors import InputError
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.types import Observations, SMPLGuess
from slahmr_priors.regressor.features import (
    FPS,
    camera_angular_velocity,
    make_features,
    to_layout,
)
from slahmr_priors.regressor.model import Regressor, rot6d_to_matrix

logger = logging.getLogger(__name__)

MIN_TRANSL_KEYPOINTS = 4
"""Frames with fewer detected keypoints take their translation from their neighbours."""


@dataclass
class Regression:
    """What the regressor says about every person and frame (P people, T frames).

    Attributes:
        guess: camera-frame SMPL guesses of the built-in body (``valid`` = the track frames).
        up_c: (P, T, 3) up direction (against gravity) in each frame's camera.
        vel_h: (P, T, 3) pelvis velocity in the body's heading frame, m/s.
        contact: (P, T, 4) contact probabilities of the left/right ankle and toe base.
        betas: (P, 10) shape of the built-in body (mean over the track's detected frames).
        shape: (P, B) the shape the translations were solved with (the body model's B): the
            predicted ``betas`` with ``use_betas``, else zeros (the mean shape).
    """

    guess: SMPLGuess
    up_c: Tensor
    vel_h: Tensor
    contact: Tensor
    betas: Tensor
    shape: Tensor


_CACHE: dict[str, Regressor] = {}


def load_regressor(path: str | Path | None = None) -> Regressor:
    """The regressor at ``path`` (None: the shipped one), loaded once per process.

    Raises:
        InputError: the file cannot be read or does not match the architecture.
    """
    key = str(path)
    if key not in _CACHE:
        try:
            _CACHE[key] = Regressor.load(path)
        except (OSError, ValueError, KeyError, RuntimeError, EOFError, UnpicklingError) as e:
            where = path or "the shipped regressor"
            raise InputError(where, f"cannot load the keypoint regressor: {e}") from None
    return _CACHE[key]


def _resample(x: Tensor, n_out: int, step: float) -> Tensor:
    """Linear resampling of (T, ...) samples at frames ``i * step``, i < n_out."""
    pos = torch.arange(n_out, dtype=torch.float64) * step
    lo = pos.floor().long().clamp(0, x.shape[0] - 1)
    hi = (lo + 1).clamp(max=x.shape[0] - 1)
    w = (pos - lo).to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    return x[lo] * (1 - w) + x[hi] * w


def _resample_vis(vis: Tensor, n_out: int, step: float) -> Tensor:
    pos = torch.arange(n_out, dtype=torch.float64) * step
    lo = pos.floor().long().clamp(0, vis.shape[0] - 1)
    hi = (lo + 1).clamp(max=vis.shape[0] - 1)
    return vis[lo] & vis[hi]


@torch.no_grad()
def _run_track(model: Regressor, uv: Tensor, vis: Tensor, intrins: Tensor, angvel: Tensor,
               fps: float) -> dict[str, Tensor]:  # fmt: skip
    """Network outputs at the track's own frames for one track (T, ...) inputs."""
    T = uv.shape[0]
    n30 = max(int(round((T - 1) * FPS / fps)) + 1, 1)
    to30 = (T - 1) / max(n30 - 1, 1)
    feats = make_features(
        _resample(uv, n30, to30),
        _resample_vis(vis, n30, to30),
        _resample(intrins, n30, to30),
        _resample(angvel, n30, to30),
    )
    out = model(feats[None])
    mats = torch.cat([out.root_c[0, :, None], out.pose[0]], 1)  # (n30, 22, 3, 3)
    raw = {
        "rot6": mats[..., :2].transpose(-1, -2).reshape(n30, 22, 6),  # first two columns
        "up_c": out.up_c[0],
        "vel_h": out.vel_h[0],
        "contact": out.contact[0],
        "betas": out.betas[0],
    }
    back = (n30 - 1) / max(T - 1, 1)
    res = {k: _resample(v, T, back) for k, v in raw.items()}
    rots = rot6d_to_matrix(res.pop("rot6"))
    res["root_c"], res["pose"] = rots[:, 0], rots[:, 1:]
    res["up_c"] = torch.nn.functional.normalize(res["up_c"], dim=-1)
    return res


def solve_translation(X: Tensor, uv: Tensor, vis: Tensor, intrins: Tensor) -> Tensor:
    """Camera-frame translations placing bodies' keypoints where they were detected.

    Minimises the linearised reprojection ``(u - cx)(Z + t_z) = fx (X + t_x)`` (and likewise
    for v) over the translation, per frame, with three Geman-McClure reweightings (scale: 2 % of
    the focal length, in pixels).

    Args:
        X: (T, K, 3) keypoints of the posed body at zero translation, camera frame.
        uv: (T, K, 2) detections; vis: (T, K) bool; intrins: (T, 4).

    Returns:
        (T, 3) translations; NaN on frames with fewer than ``MIN_TRANSL_KEYPOINTS``.
    """
    X, uv = X.double(), uv.double()
    f, c = intrins[:, None, :2].double(), intrins[:, None, 2:].double()
    d = uv - c  # (T, K, 2)
    A = torch.zeros(*d.shape, 3, dtype=torch.float64)
    A[..., 0, 0], A[..., 1, 1] = f[..., 0], f[..., 1]
    A[..., :, 2] = -d
    b = d * X[..., 2:3] - f * X[..., :2]
    w = vis.double()[..., None].expand_as(d).clone()
    t = torch.zeros(X.shape[0], 3, dtype=torch.float64)
    for _ in range(4):
        Aw = A * w[..., None]
        lhs = torch.einsum("tkai,tkaj->tij", Aw, A) + 1e-9 * torch.eye(3, dtype=torch.float64)
        rhs = torch.einsum("tkai,tka->ti", Aw, b)
        t = torch.linalg.solve(lhs, rhs)
        # Residuals in pixels: divide by the depth of each point.
        depth = (X[..., 2] + t[:, None, 2]).clamp(min=0.1)[..., None]
        r = (torch.einsum("tkai,ti->tka", A, t) - b) / depth
        scale = 0.02 * intrins[:, None, None, 0].double()
        w = vis.double()[..., None] * scale**2 / (scale**2 + r**2)
    t[vis.sum(-1) < MIN_TRANSL_KEYPOINTS] = float("nan")
    return t.float()


def _fill_nan(x: Tensor) -> Tensor:
    """Linear interpolation over NaN rows of (T, D), held at the ends."""
    ok = ~torch.isnan(x).any(-1)
    if ok.all() or not ok.any():
        return x
    idx = torch.nonzero(ok)[:, 0]
    t = torch.arange(len(x))
    pos = torch.searchsorted(idx, t).clamp(1, max(len(idx) - 1, 1))
    lo, hi = idx[pos - 1], idx[pos.clamp(max=len(idx) - 1)]
    w = ((t - lo) / (hi - lo).clamp(min=1)).clamp(0, 1)[:, None].to(x)
    return x[lo] * (1 - w) + x[hi] * w


def regress(obs: Observations, body_model: BodyModel, path: str | Path | None = None,
            min_conf: float = 0.0, use_betas: bool = False) -> Regression:  # fmt: skip
    """Run the regressor on every track of ``obs``.

    Args:
        obs: observations (any keypoint format, any frame rate).
        body_model: the solve's body model.
        path: regressor weights; None: the shipped file.
        min_conf: keypoints at or below this confidence count as not detected.
        use_betas: solve the translations with the predicted shape (for the built-in body,
            whose shape space the regressor learned), else with the mean shape.

    Returns:
        ``Regression`` over all P people and T frames (frames outside a track hold zeros).
    """
    model = load_regressor(path)
    P, T = obs.kp2d.shape[:2]
    kp = to_layout(obs.kp2d.float(), obs.kp_format)
    uv, vis = kp[..., :2], (kp[..., 2] > min_conf) & obs.vis_mask[..., None]
    R = obs.cameras.R_w2c.float()
    angvel = torch.zeros(T, 3) if obs.cameras.is_static else camera_angular_velocity(R, obs.fps)
    intrins = obs.cameras.intrins.float()
    orient = torch.zeros(P, T, 3)
    pose = torch.zeros(P, T, 21, 3)
    transl = torch.zeros(P, T, 3)
    up, vel, contact = torch.zeros(P, T, 3), torch.zeros(P, T, 3), torch.zeros(P, T, 4)
    betas = torch.zeros(P, 10)
    dtype = body_model.dtype
    shape = torch.zeros(P, body_model.num_betas)
    for p in range(P):
        frames = torch.nonzero(obs.track_mask[p])[:, 0]
        if len(frames) == 0:
            continue
        a, b = int(frames[0]), int(frames[-1]) + 1
        res = _run_track(model, uv[p, a:b], vis[p, a:b], intrins[a:b], angvel[a:b], obs.fps)
        det = vis[p, a:b].any(-1)
        betas[p] = res["betas"][det].mean(0) if det.any() else res["betas"].mean(0)
        if use_betas:
            n = min(10, body_model.num_betas)
            shape[p, :n] = betas[p, :n]
        orient[p, a:b] = rotmat_to_rotvec(res["root_c"])
        pose[p, a:b] = rotmat_to_rotvec(res["pose"])
        with torch.no_grad():
            zero = torch.zeros(b - a, 3, dtype=dtype)
            out = body_model(shape[p].to(dtype).expand(b - a, -1), orient[p, a:b].to(dtype),
                             pose[p, a:b].to(dtype), zero)  # fmt: skip
        X = to_layout(body_model.keypoints(out, "op25"), "op25").float()
        t = solve_translation(X, uv[p, a:b], vis[p, a:b], intrins[a:b])
        if torch.isnan(t).all():
            raise InputError(obs.sources.get("tracks", "tracks"), f"track {obs.track_ids[p]}: "
                             f"no frame has {MIN_TRANSL_KEYPOINTS} detected keypoints")  # fmt: skip
        transl[p, a:b] = _fill_nan(t)
        up[p, a:b], vel[p, a:b], contact[p, a:b] = res["up_c"], res["vel_h"], res["contact"]
    guess = SMPLGuess(orient, pose, betas[:, None].expand(P, T, 10).clone(), transl,
                      obs.track_mask.clone())  # fmt: skip
    return Regression(guess, up, vel, contact, betas, shape)


BLEND_FACING_DEG = 60.0
"""``blend``: a tracker guess whose forward axis is further than this from the regressor's
takes the regressor's orientation and pose."""


def with_regressor_guesses(obs: Observations, body_model: BodyModel, mode: str,
                           path: str | Path | None = None, use_betas: bool = False):  # fmt: skip
    """``obs`` with the regressor's guesses where ``mode`` (``init.guesses``) asks for them, the
    ``Regression`` (None if the regressor did not run) and the initial shape (P, B): the
    regressor's ``shape`` for the people whose translations all come from it, else zeros.

    ``auto``: tracks without any tracker guess; ``regressor``: every track; ``blend``: the
    tracker's guesses, except on frames without one and frames where the tracker's body faces
    more than ``BLEND_FACING_DEG`` away from the regressor's (a front/back flip), which take the
    regressor's orientation and pose (translations stay the tracker's where it has them);
    ``tracker``: none. The regressor's translations are re-expressed for the tracker's
    ``rest_pelvis`` when the two are mixed, so ``initialize_bodies`` places both alike.
    """
    zeros = torch.zeros(obs.num_people, body_model.num_betas)
    if mode == "tracker":
        return obs, None, zeros
    old = obs.smpl_guess
    has_any = None if old is None else (old.valid & obs.track_mask).any(1)
    if mode == "auto" and has_any is not None and bool(has_any.all()):
        return obs, None, zeros
    regression = regress(obs, body_model, path, use_betas=use_betas)
    new = regression.guess
    if old is None or mode == "regressor" or (mode == "auto" and not bool(has_any.any())):
        return replace(obs, smpl_guess=new), regression, regression.shape
    have = old.valid & obs.track_mask
    if mode == "auto":
        use_pose = use_transl = ~has_any[:, None].expand_as(have)
    else:  # blend
        R_old = rotvec_to_rotmat(old.global_orient_c.double())
        R_new = rotvec_to_rotmat(new.global_orient_c.double())
        cos = (R_old[..., :, 2] * R_new[..., :, 2]).sum(-1)
        flipped = have & (cos < math.cos(math.radians(BLEND_FACING_DEG)))
        use_pose, use_transl = ~have | flipped, ~have
        logger.info("blend: %d of %d tracker guesses face away from the regressor's; %d frames "
                    "without one", int(flipped.sum()), int(have.sum()),
                    int((obs.track_mask & ~have).sum()))  # fmt: skip
    names = [obs.track_ids[p] for p in range(obs.num_people) if bool(use_pose[p].any())]
    logger.info("tracks %s: 3D guesses (partly) from the keypoint regressor", ", ".join(names))
    if old.rest_pelvis is not None:
        rest = body_model.rest_pose(regression.shape.to(body_model.dtype), False)
        pelvis0 = rest.joints[:, None, 0].float()  # (P, 1, 3)
        new = replace(new, transl_c=new.transl_c + pelvis0 - old.rest_pelvis.float())
    B = old.betas.shape[-1]
    betas = torch.zeros(*old.betas.shape[:2], B)
    betas[..., : min(B, 10)] = new.betas[..., : min(B, 10)]
    m, mt = use_pose, use_transl
    merged = SMPLGuess(
        global_orient_c=torch.where(m[..., None], new.global_orient_c, old.global_orient_c),
        body_pose=torch.where(m[..., None, None], new.body_pose, old.body_pose),
        betas=torch.where(mt[..., None], betas, old.betas.float()),
        transl_c=torch.where(mt[..., None], new.transl_c, old.transl_c),
        valid=have | (new.valid & (m | mt)),
        rest_pelvis=old.rest_pelvis,
    )
    whole = mt.all(1)[:, None]
    return replace(obs, smpl_guess=merged), regression, torch.where(whole, regression.shape, zeros)
