"""Keyframe visual odometry on background tracks: initial poses, bundle adjustment, all frames.

1. Keyframes are frames where the background has moved enough since the last keyframe, or
   lost too many of its tracks (``select_keyframes``).
2. Translation is observable once two keyframes show parallax that no pure rotation explains:
   the median residual of a rotation-only fit above ``min_parallax_px``. Until then keyframes
   are chained by rotation-only fits (a pan needs nothing more). At the first such pair the
   essential matrix gives the relative pose, its tracks are triangulated and the scale is set so
   that their median depth is 1; later keyframes are placed by PnP on the triangulated points,
   and new points are triangulated as the baseline grows. Where PnP fails (the map left the
   view) the essential matrix, with the previous step length, or a rotation-only fit carries on.
3. A bundle adjustment (``camera_ba``) refines keyframes and points, twice: outlying
   observations (people the mask missed, bad tracks) are dropped in between.
4. Every other frame gets its pose by PnP on the refined points (or a rotation fit on their
   directions for a pan), started from the interpolation of its keyframes.

``focal_profile`` measures the focal length the same way (TRAM searches it on reprojection
error too): the adjusted keyframe problem is adjusted again under focal lengths from 0.6x to
1.6x the given one, and the one with the lowest reprojection error wins where the error curve
has a clear interior minimum.
"""

import contextlib
import copy
import logging
from dataclasses import dataclass, field

import numpy as np

from slahmr_opt.frontend.camera_ba import BundleProblem, bundle_adjust
from slahmr_opt.frontend.camera_geometry import (
    bearings,
    pnp,
    project,
    relative_pose,
    rotation_ransac,
    triangulate,
)
from slahmr_opt.frontend.camera_keyframes import Keyframes, interpolate_poses
from slahmr_opt.frontend.camera_tracks import Tracks

log = logging.getLogger(__name__)


@dataclass
class VOSettings:
    """Keyframes, model selection, triangulation and bundle adjustment of the odometry."""

    keyframe_flow: float = 0.04
    """A new keyframe once the median track motion exceeds this fraction of the long side."""
    keyframe_keep: float = 0.6
    """... or fewer than this fraction of the last keyframe's tracks are left."""
    max_keyframe_gap: int = 12
    """... or this many frames have passed."""
    min_parallax_px: float = 1.0
    """Median rotation-only residual (tracking pixels) above which translation is observable."""
    ransac_px: float = 1.5
    """RANSAC inlier threshold, tracking pixels."""
    min_angle_deg: float = 1.5
    """Smallest ray angle for triangulating a point."""
    min_points: int = 15
    """Fewest points for an essential matrix, a PnP or a rotation fit."""
    ba_iterations: int = 40
    """Residual evaluations of each bundle adjustment."""
    huber_px: float = 1.0
    """Huber scale of the bundle adjustment, tracking pixels."""
    outlier_px: float = 3.0
    """Observations with a larger error after the first adjustment are dropped."""
    seed: int = 0
    """Seed of the RANSAC samplers."""
    focal_range: tuple[float, float] = (0.6, 1.6)
    """Factors of the given focal length ``focal_profile`` searches between."""
    focal_steps: int = 21
    """Focal lengths tried (log-spaced)."""
    focal_band: float = 0.01
    """The focal's uncertainty range: factors whose reprojection RMS is within this fraction of
    the best; an estimate whose range is wider than ``focal_max_range`` (or touches the ends of
    the search) is not used."""
    focal_max_range: float = 1.25
    """Largest accepted ratio between the ends of the uncertainty range."""


@dataclass
class FocalEstimate:
    """The focal length that fits the background tracks best, as a factor of the given one.

    Attributes:
        factor: best factor (parabolic refinement of the grid's minimum).
        low, high: factors whose reprojection RMS is within ``focal_band`` of the best.
        accepted: the minimum is clear (``low`` and ``high`` inside the search, ``high / low`` at
            most ``focal_max_range``).
        factors, rms_px: the profile (reprojection RMS, tracking pixels, per factor).
    """

    factor: float
    low: float
    high: float
    accepted: bool
    factors: list[float] = field(default_factory=list)
    rms_px: list[float] = field(default_factory=list)


@dataclass
class VOResult:
    """World-to-camera poses of every frame (world = first camera) and diagnostics.

    Attributes:
        R: (T, 3, 3); t: (T, 3), in units of the median depth of the triangulated background
            points (each in the keyframe that first saw it) after the adjustment.
        translating: False for a pure rotation (``t`` is zero).
        keyframes: frame indices of the keyframes.
        inliers: (T,) points that agree with each frame's pose (0: keyframes, whose poses come
            from the adjustment, and interpolated frames).
        ba_rms_px: reprojection RMS of the final adjustment, tracking pixels.
        points: (N, 3) world positions of the triangulated background points that survived the
            adjustment, in the units of ``t`` (empty for a pure rotation).
        point_frames: (N, 2) first and last frame whose tracks hold each point (inclusive).
        focal: the focal profile when asked for (``run_odometry(..., profile_focal=True)``) and
            the camera translates.
    """

    R: np.ndarray
    t: np.ndarray
    translating: bool
    keyframes: list[int]
    inliers: np.ndarray
    ba_rms_px: float = 0.0
    focal: FocalEstimate | None = None
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    point_frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))


class _Map:
    """Triangulated points by track id."""

    def __init__(self):
        self.points: dict[int, np.ndarray] = {}

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n,) bool known, (m, 3) points of the known ones."""
        known = np.array([int(i) in self.points for i in ids], bool)
        pts = np.array([self.points[int(i)] for i in ids[known]]).reshape(-1, 3)
        return known, pts


class _Odometry:
    def __init__(self, kf: Keyframes, focal: float, settings: VOSettings):
        self.kf, self.settings = kf, settings
        self.focal = focal  # tracking pixels per normalized unit
        self.thr = settings.ransac_px / focal
        self.rng = np.random.default_rng(settings.seed)
        K = len(kf.frames)
        self.R = np.tile(np.eye(3), (K, 1, 1))
        self.t = np.zeros((K, 3))
        self.map: _Map | None = None

    def rotation_step(self, j: int) -> np.ndarray:
        """``R_j`` from a rotation-only fit to keyframe j-1 (the previous one if that fails)."""
        _, xa, xb = self.kf.common(j - 1, j)
        if len(xa) < self.settings.min_points:
            return self.R[j - 1]
        R_rel, _, _ = rotation_ransac(bearings(xa), bearings(xb), self.thr, self.rng)
        return R_rel @ self.R[j - 1]

    def parallax(self, a: int, j: int) -> tuple[float, np.ndarray, np.ndarray]:
        """Median rotation-only residual (tracking px) between keyframes a and j, and matches."""
        _, xa, xb = self.kf.common(a, j)
        if len(xa) < self.settings.min_points:
            return 0.0, xa, xb
        _, _, res = rotation_ransac(bearings(xa), bearings(xb), self.thr, self.rng)
        return float(np.median(res)) * self.focal, xa, xb

    def run(self) -> bool:
        """Place every keyframe; True if translation was observed."""
        for j in range(1, len(self.kf.frames)):
            if self.map is None:
                self.R[j] = self.rotation_step(j)
                self.try_initialize(j)
            else:
                self.register(j)
                self.triangulate_new(j)
        return self.map is not None

    def try_initialize(self, j: int) -> None:
        """Start the map from the widest keyframe pair (a, j) that shows parallax."""
        need = max(self.settings.min_points * 3, 0.25 * len(self.kf.ids[j]))
        for a in range(j):
            _, xa, _ = self.kf.common(a, j)
            if len(xa) >= need:
                break
        else:
            return
        parallax, xa, xb = self.parallax(a, j)
        if parallax < self.settings.min_parallax_px:
            return
        rel = relative_pose(xa, xb, self.thr)
        if rel is None:
            return
        R_rel, t_rel, inl = rel
        pose_a = (self.R[a], self.t[a])
        pose_j = (R_rel @ self.R[a], R_rel @ self.t[a] + t_rel)
        pts, angle = triangulate(xa[inl], xb[inl], pose_a, pose_j)
        good = self._good_points(pts, angle, xa[inl], xb[inl], pose_a, pose_j)
        if good.sum() < self.settings.min_points:
            return
        _, depth = project(pts[good], pose_a)
        scale = 1.0 / np.median(depth)
        # keyframes up to a share camera centre 0 (rotation only), so scaling about the origin
        # keeps them in place
        self.R[j], self.t[j] = pose_j[0], pose_j[1] * scale
        ids = self.kf.common(a, j)[0][inl][good]
        self.map = _Map()
        self.map.points = {int(i): p * scale for i, p in zip(ids, pts[good])}
        log.debug("map started from keyframes %d-%d: %d points", a, j, int(good.sum()))
        for k in range(a + 1, j):
            self.register(k, guess=(self.R[k], self.t[j] * (k - a) / (j - a)))
        for k in range(a + 1, j + 1):
            self.triangulate_new(k)

    def _good_points(self, pts, angle, xa, xb, pose_a, pose_b) -> np.ndarray:
        pa, za = project(pts, pose_a)
        pb, zb = project(pts, pose_b)
        good = (angle > np.deg2rad(self.settings.min_angle_deg)) & (za > 0) & (zb > 0)
        good &= np.linalg.norm(pa - xa, axis=1) < self.thr
        good &= np.linalg.norm(pb - xb, axis=1) < self.thr
        return good

    def register(self, j: int, guess: tuple | None = None) -> None:
        """Pose of keyframe j by PnP on the map, else by relative motion from keyframe j-1."""
        ids, xn = self.kf.ids[j], self.kf.xn[j]
        known, pts = self.map.lookup(ids)
        guess = guess or (self.R[j - 1], self.t[j - 1])
        found = pnp(pts, xn[known], guess, self.thr, self.settings.min_points)
        if found is not None:
            (self.R[j], self.t[j]), _ = found
            return
        parallax, xa, xb = self.parallax(j - 1, j)
        rel = relative_pose(xa, xb, self.thr) if parallax >= self.settings.min_parallax_px else None
        centre = -self.R[j - 1].T @ self.t[j - 1]
        if rel is None:
            self.R[j] = self.rotation_step(j)
            self.t[j] = -self.R[j] @ centre
            return
        R_rel, t_dir, _ = rel
        step = self._previous_step(j)
        self.R[j] = R_rel @ self.R[j - 1]
        self.t[j] = R_rel @ self.t[j - 1] + t_dir * step
        log.debug("keyframe %d placed by its essential matrix (PnP failed)", j)

    def _previous_step(self, j: int) -> float:
        centres = -np.einsum("kji,kj->ki", self.R[:j], self.t[:j])
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        steps = steps[steps > 0]
        return float(np.median(steps[-5:])) if len(steps) else 0.05

    def triangulate_new(self, j: int) -> None:
        """Triangulate tracks of keyframe j that are not in the map against their first view."""
        ids, xn = self.kf.ids[j], self.kf.xn[j]
        known, _ = self.map.lookup(ids)
        first = self.kf.first_keyframe(ids)
        todo = ~known & (first < j)
        for a in np.unique(first[todo]):
            sel = todo & (first == a)
            xa = self.kf.point_at(a, ids[sel])
            pose_a, pose_j = (self.R[a], self.t[a]), (self.R[j], self.t[j])
            pts, angle = triangulate(xa, xn[sel], pose_a, pose_j)
            good = self._good_points(pts, angle, xa, xn[sel], pose_a, pose_j)
            for i, p in zip(ids[sel][good], pts[good]):
                self.map.points[int(i)] = p


def _bundle_problem(kf: Keyframes, odo: _Odometry, focal: float, translating: bool):
    """Every track seen in two or more keyframes, anchored in its first keyframe."""
    obs_cam, obs_id, obs_xn = kf.observations()
    ids, counts = np.unique(obs_id, return_counts=True)
    ids = ids[counts >= 2]
    keep = np.isin(obs_id, ids)
    obs_cam, obs_id, obs_xn = obs_cam[keep], obs_id[keep], obs_xn[keep]
    point = np.searchsorted(ids, obs_id)
    anchor = kf.first_keyframe(ids)
    uv = kf.point_at_each(anchor, ids)
    rho = np.zeros(len(ids))
    triangulated = np.zeros(len(ids), bool)
    if translating:
        depths = []
        for n, i in enumerate(ids):
            X = odo.map.points.get(int(i))
            if X is not None:
                z = (odo.R[anchor[n]] @ X + odo.t[anchor[n]])[2]
                if z > 0:
                    rho[n], triangulated[n] = 1.0 / z, True
                    depths.append(z)
        rho[rho == 0] = 0.1 / np.median(depths)  # untriangulated: far away
    return (
        BundleProblem(
            R=odo.R.copy(),
            t=odo.t.copy(),
            points=np.concatenate([uv, rho[:, None]], axis=1),
            anchor=anchor,
            obs_cam=obs_cam,
            obs_point=point,
            obs_xn=obs_xn,
            focal=np.array([focal, focal]),
            rotation_only=not translating,
        ),
        ids,
        triangulated,
    )


def _refine(problem: BundleProblem, settings: VOSettings) -> tuple[float, int]:
    """Bundle adjustment, then again without outliers; returns the RMS error and the number of
    observations dropped. A track with any error above ``outlier_px`` is dropped whole: a point
    on something that moves (a person the mask missed) fits nowhere exactly."""
    err = bundle_adjust(problem, settings.huber_px, max_iterations=settings.ba_iterations // 2)
    worst = np.zeros(len(problem.points))
    np.maximum.at(worst, problem.obs_point, err)
    keep = worst[problem.obs_point] < settings.outlier_px
    problem.select(keep)
    err = bundle_adjust(problem, settings.huber_px, max_iterations=settings.ba_iterations)
    rms = float(np.sqrt(np.mean(np.minimum(err, settings.outlier_px) ** 2)))
    return rms, int((~keep).sum())


def run_odometry(
    tracks: Tracks, intrins: np.ndarray, settings: VOSettings, profile_focal: bool = False
) -> VOResult:
    """Camera poses of every frame from background tracks.

    Args:
        tracks: background tracks (tracking resolution).
        intrins: (4,) ``[fx, fy, cx, cy]`` of the original frames.
        settings: odometry settings.
        profile_focal: also measure the focal length (``focal_profile``) when the camera
            translates.

    Returns:
        World-to-camera poses with the first frame's camera as the world.
    """
    with _one_blas_thread():
        return _run_odometry(tracks, intrins, settings, profile_focal)


def _one_blas_thread():
    """Small dense solves run single-threaded: on a busy machine OpenBLAS threads that wait for
    each other made a 138 x 138 solve take 100 ms instead of 0.3 ms."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _run_odometry(tracks: Tracks, intrins: np.ndarray, settings: VOSettings, profile_focal: bool):
    kf = Keyframes.from_tracks(tracks, intrins, settings)
    focal = float(np.mean(intrins[:2])) * tracks.scale
    odo = _Odometry(kf, focal, settings)
    translating = odo.run()
    problem, point_ids, triangulated = _bundle_problem(kf, odo, focal, translating)
    rms, dropped = _refine(problem, settings)
    log.debug(
        "%d keyframes, %d points, %d observations dropped as outliers, %d moving tracks",
        len(kf.frames), len(point_ids), dropped, len(kf.rejected),
    )  # fmt: skip
    R, t, inliers = _all_frames(tracks, kf, problem, point_ids, settings, focal)
    depth = 1.0
    rho = problem.points[:, 2][triangulated]
    if translating and (rho > 1e-9).any():
        depth = float(np.median(1.0 / rho[rho > 1e-9]))
    result = VOResult(R, t / depth, translating, kf.frames, inliers, rms)
    if translating and profile_focal:
        result.focal = focal_profile(problem, settings)
    if translating:
        result.points, result.point_frames = _scene_points(tracks, problem, point_ids, triangulated)
        result.points /= depth
    return result


def focal_profile(problem: BundleProblem, settings: VOSettings) -> FocalEstimate:
    """Reprojection RMS of the adjusted keyframe problem re-adjusted under other focal lengths.

    Scaling the focal length by ``k`` (principal point fixed) divides every normalized
    coordinate by ``k``; the pixel errors of a perfect fit stay zero only at the true focal
    length once the camera has moved and turned enough to tell a wider lens from a deeper scene.
    """
    lo, hi = settings.focal_range
    factors = np.exp(np.linspace(np.log(lo), np.log(hi), settings.focal_steps))
    rms = np.array([_rms_at_focal(problem, k, settings) for k in factors])
    best = int(np.argmin(rms))
    factor = float(factors[best])
    if 0 < best < len(factors) - 1:  # parabola through the minimum and its neighbours
        x, y = np.log(factors[best - 1 : best + 2]), rms[best - 1 : best + 2]
        a, b, _ = np.polyfit(x, y, 2)
        if a > 0:
            factor = float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))
    inside = np.flatnonzero(rms <= rms[best] * (1 + settings.focal_band))
    low = min(float(factors[inside.min()]), factor)
    high = max(float(factors[inside.max()]), factor)
    accepted = (
        inside.min() > 0
        and inside.max() < len(factors) - 1
        and high / low <= settings.focal_max_range
    )
    return FocalEstimate(factor, low, high, bool(accepted), factors.tolist(), rms.tolist())


def _rms_at_focal(problem: BundleProblem, k: float, settings: VOSettings) -> float:
    trial = copy.copy(problem)
    trial.obs_xn = problem.obs_xn / k
    trial.points = problem.points.copy()
    trial.points[:, :2] /= k
    trial.focal = problem.focal * k
    trial.R, trial.t = problem.R.copy(), problem.t.copy()
    err = bundle_adjust(trial, settings.huber_px, max_iterations=settings.ba_iterations // 2)
    return float(np.sqrt(np.mean(np.minimum(err, settings.outlier_px) ** 2)))


def _scene_points(tracks, problem: BundleProblem, point_ids, triangulated):
    """The adjusted points that were triangulated and kept two or more keyframe observations
    after the outlier pass: world positions (N, 3) and observing frame ranges (N, 2)."""
    seen = np.bincount(problem.obs_point, minlength=len(point_ids))
    _, world = _world_points(problem.R, problem.t, problem.points, problem.anchor)
    keep = triangulated & (seen >= 2) & np.isfinite(world).all(axis=1)
    ids = point_ids[keep]
    first = np.full(len(ids), np.iinfo(np.int64).max)
    last = np.full(len(ids), -1)
    for f, frame_ids in enumerate(tracks.ids):
        pos = np.searchsorted(ids, frame_ids)
        pos = np.minimum(pos, max(len(ids) - 1, 0))
        hit = pos[ids[pos] == frame_ids] if len(ids) else pos[:0]
        first[hit] = np.minimum(first[hit], f)
        last[hit] = f
    return world[keep], np.stack([first, last], axis=1).astype(np.int64)


def _world_points(R_kf, t_kf, pts, anchor) -> tuple[np.ndarray, np.ndarray]:
    """Anchored points -> world directions (P, 3) (unit) and world points (P, 3) (nan if far)."""
    uv1 = np.concatenate([pts[:, :2], np.ones((len(pts), 1))], axis=1)
    dirs = np.einsum("pji,pj->pi", R_kf[anchor], uv1)  # R_a^T [u, v, 1]
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    rho = pts[:, 2]
    centres = -np.einsum("pji,pj->pi", R_kf[anchor], t_kf[anchor])
    with np.errstate(divide="ignore", invalid="ignore"):
        world = centres + np.einsum("pji,pj->pi", R_kf[anchor], uv1) / rho[:, None]
    world[rho <= 1e-9] = np.nan
    return dirs, world


def _all_frames(tracks, kf, problem: BundleProblem, point_ids, settings, focal):
    """Poses of all frames: keyframes from the adjustment, the others by PnP (or a rotation fit)
    on the adjusted points, started from (and falling back to) the interpolated pose."""
    R_kf, t_kf, pts = problem.R, problem.t, problem.points
    T = tracks.num_frames
    R, t = interpolate_poses(kf.frames, R_kf, t_kf, T)
    inliers = np.zeros(T, int)
    dirs, world = _world_points(R_kf, t_kf, pts, problem.anchor)
    thr = settings.ransac_px / focal
    rng = np.random.default_rng(settings.seed)
    kf_set = set(kf.frames)
    for f in range(T):
        if f in kf_set:
            continue
        ids = tracks.ids[f]
        pos = np.searchsorted(point_ids, ids)
        pos = np.minimum(pos, len(point_ids) - 1)
        have = (point_ids[pos] == ids) if len(point_ids) else np.zeros(len(ids), bool)
        xn = kf.normalize(tracks.points[f][have])
        idx = pos[have]
        if problem.rotation_only:
            if len(idx) >= settings.min_points:
                R_f, inl, _ = rotation_ransac(dirs[idx], bearings(xn), thr, rng)
                if inl.sum() >= settings.min_points:
                    R[f], inliers[f] = R_f, int(inl.sum())
            continue
        finite = np.isfinite(world[idx]).all(axis=1)
        found = pnp(world[idx][finite], xn[finite], (R[f], t[f]), thr, settings.min_points)
        if found is not None:
            (R[f], t[f]), inl = found
            inliers[f] = int(inl.sum())
    return R, t, inliers
