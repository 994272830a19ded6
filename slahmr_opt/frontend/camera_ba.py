"""Bundle adjustment of keyframe poses and anchored inverse-depth points.

A point is stored in the camera of its first observation (its anchor ``a``) as
``(u, v, rho)``: the ray through normalized coordinates ``m = (u, v, 1)`` at inverse depth
``rho``. In camera ``j`` (world-to-camera ``R_j, t_j``) it is, up to the positive factor
``1 / rho``,

    q = rho X_j = M (m - rho t_a) + rho t_j,    M = R_j R_a^T,

which stays finite for points at infinity (``rho = 0``), so distant background that shows no
parallax still constrains the rotations. The rotation-only model (a pan) fixes ``rho = 0`` and
``t = 0`` and keeps ``(u, v)`` and the rotations.

Levenberg-Marquardt with analytic Jacobians (checked against finite differences in the tests),
a Huber loss on each observation's pixel error, and the point blocks eliminated by the Schur
complement, so each step solves a dense system of the size of the camera parameters. Rotations
are updated on the left, ``R <- exp([d]x) R``. The first keyframe is held fixed (the world frame
is its camera frame). The overall scale is free; a weak prior pulling the translations towards
their initial values removes that freedom and carries poses over stretches without shared
points.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.spatial.transform import Rotation

log = logging.getLogger(__name__)

BEHIND_PX = 100.0
"""Pixel error charged to an observation whose point lies behind the camera."""


@dataclass
class BundleProblem:
    """Observations and current values of a bundle adjustment.

    Attributes:
        R: (K, 3, 3) world-to-camera rotations of the keyframes.
        t: (K, 3) world-to-camera translations.
        points: (P, 3) ``(u, v, rho)`` per point.
        anchor: (P,) keyframe each point is stored in.
        obs_cam: (M,) keyframe of each observation.
        obs_point: (M,) point of each observation.
        obs_xn: (M, 2) observed normalized coordinates.
        focal: (2,) ``(fx, fy)`` turning normalized errors into pixels.
        rotation_only: fix ``rho = 0`` and ``t = 0`` (pure rotation).
    """

    R: np.ndarray
    t: np.ndarray
    points: np.ndarray
    anchor: np.ndarray
    obs_cam: np.ndarray
    obs_point: np.ndarray
    obs_xn: np.ndarray
    focal: np.ndarray
    rotation_only: bool = False

    @property
    def cam_dof(self) -> int:
        return 3 if self.rotation_only else 6

    @property
    def point_dof(self) -> int:
        return 2 if self.rotation_only else 3

    def select(self, keep: np.ndarray) -> None:
        """Keep the observations where ``keep`` (M,) is True."""
        self.obs_cam, self.obs_point = self.obs_cam[keep], self.obs_point[keep]
        self.obs_xn = self.obs_xn[keep]


def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    out = np.zeros(v.shape + (3,))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def residuals(problem: BundleProblem) -> tuple[np.ndarray, np.ndarray]:
    """Pixel errors (M, 2) of every observation and whether its point is in front (M,)."""
    return _evaluate(problem, jacobians=False)[:2]


def _evaluate(problem: BundleProblem, jacobians: bool = True):
    """Errors (M, 2), in-front flags (M,), and the Jacobians of the errors with respect to
    camera j's ``(rotation, translation)`` (M, 2, 6), the anchor camera's (M, 2, 6) and the
    point's ``(u, v, rho)`` (M, 2, 3)."""
    j, p = problem.obs_cam, problem.obs_point
    a = problem.anchor[p]
    R, t = problem.R, problem.t
    m = np.concatenate([problem.points[p, :2], np.ones((len(p), 1))], axis=1)
    rho = problem.points[p, 2:3]
    M = np.einsum("mij,mkj->mik", R[j], R[a])  # R_j R_a^T
    v = m - rho * t[a]
    q = np.einsum("mij,mj->mi", M, v) + rho * t[j]
    front = q[:, 2] > 1e-6
    z = np.where(front, q[:, 2], 1e-6)
    err = (q[:, :2] / z[:, None] - problem.obs_xn) * problem.focal
    if not jacobians:
        return err, front
    dproj = np.zeros((len(p), 2, 3))  # d(pixels) / dq
    dproj[:, 0, 0] = problem.focal[0] / z
    dproj[:, 1, 1] = problem.focal[1] / z
    dproj[:, :, 2] = -problem.focal * q[:, :2] / z[:, None] ** 2
    eye = np.eye(3)
    Rw = q - rho * t[j]  # R_j R_a^T v
    d_cam = np.concatenate([-_skew(Rw), rho[:, :, None] * eye], axis=2)  # (M, 3, 6)
    d_anchor = np.concatenate([M @ _skew(v), -rho[:, :, None] * M], axis=2)
    d_point = np.stack([M[:, :, 0], M[:, :, 1], t[j] - np.einsum("mij,mj->mi", M, t[a])], axis=2)
    return err, front, dproj @ d_cam, dproj @ d_anchor, dproj @ d_point


def _huber(err: np.ndarray, front: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """IRLS weights (M,) and the robust cost of pixel errors (M, 2)."""
    norm = np.where(front, np.linalg.norm(err, axis=1), BEHIND_PX)
    weight = np.where(norm <= delta, 1.0, delta / np.maximum(norm, 1e-12))
    cost = np.where(norm <= delta, 0.5 * norm**2, delta * (norm - 0.5 * delta))
    return np.where(front, weight, 0.0), float(cost.sum())


class _Solver:
    def __init__(self, problem: BundleProblem, huber_px: float, prior: float):
        self.problem, self.huber, self.prior = problem, huber_px, prior
        self.t0 = problem.t.copy()
        K, P = len(problem.R), len(problem.points)
        self.nc, self.npd = (K - 1) * problem.cam_dof, problem.point_dof
        self.P = P

    def cost(self) -> float:
        err, front = residuals(self.problem)
        cost = _huber(err, front, self.huber)[1]
        if not self.problem.rotation_only:
            cost += 0.5 * self.prior**2 * np.sum((self.problem.t[1:] - self.t0[1:]) ** 2)
        return cost

    def normal_equations(self):
        """Camera block U (nc, nc), coupling W (nc, P*pd) sparse, point blocks V (P, pd, pd),
        gradients g_c (nc,), g_p (P, pd)."""
        pr, cd, pd = self.problem, self.problem.cam_dof, self.npd
        err, front, Jj, Ja, Jp = _evaluate(pr)
        w, _ = _huber(err, front, self.huber)
        Jj, Ja, Jp = Jj[:, :, :cd], Ja[:, :, :cd], Jp[:, :, :pd]
        M = len(err)
        rows = np.arange(2 * M).reshape(M, 2)
        parts_r, parts_c, parts_v = [], [], []
        for cams, J in ((pr.obs_cam, Jj), (pr.anchor[pr.obs_point], Ja)):
            use = cams > 0
            r = np.repeat(rows[use][:, :, None], cd, axis=2)
            c = ((cams[use] - 1) * cd)[:, None, None] + np.arange(cd)
            parts_r.append(r.ravel())
            parts_c.append(np.broadcast_to(c, r.shape).ravel())
            parts_v.append(J[use].ravel())
        rows_all, cols_all = np.concatenate(parts_r), np.concatenate(parts_c)
        Jc = coo_matrix((np.concatenate(parts_v), (rows_all, cols_all)), shape=(2 * M, self.nc))
        Jc = Jc.tocsr()
        sw = np.repeat(w, 2)
        Jc_w = csr_matrix(Jc.multiply(sw[:, None]))
        r = err.ravel()
        U = (Jc.T @ Jc_w).toarray()
        g_c = Jc_w.T @ r
        pcols = (pr.obs_point * pd)[:, None, None] + np.arange(pd)
        Jp_sp = coo_matrix(
            (Jp.ravel(), (np.repeat(rows[:, :, None], pd, 2).ravel(),
                          np.broadcast_to(pcols, (M, 2, pd)).ravel())),
            shape=(2 * M, self.P * pd),
        ).tocsr()  # fmt: skip
        W = (Jc_w.T @ Jp_sp).tocsr()
        V = np.zeros((self.P, pd, pd))
        np.add.at(V, pr.obs_point, w[:, None, None] * np.einsum("mki,mkj->mij", Jp, Jp))
        g_p = np.zeros((self.P, pd))
        np.add.at(g_p, pr.obs_point, w[:, None] * np.einsum("mki,mk->mi", Jp, err))
        if not pr.rotation_only:
            tr = (np.arange(len(pr.R) - 1)[:, None] * cd + 3 + np.arange(3)).ravel()
            U[tr, tr] += self.prior**2
            g_c[tr] += self.prior**2 * (pr.t[1:] - self.t0[1:]).ravel()
        return U, W, V, g_c, g_p

    def step(self, U, W, V, g_c, g_p, lam: float):
        """Damped Gauss-Newton step by the Schur complement: (d_cams (nc,), d_points (P, pd))."""
        pd = self.npd
        U = U + lam * np.diag(np.diag(U) + 1e-9)
        V = V + lam * (np.einsum("pii->pi", V)[:, :, None] * np.eye(pd) + 1e-9 * np.eye(pd))
        V_inv = np.linalg.inv(V)
        blocks = np.arange(self.P * pd).reshape(self.P, pd)
        V_inv_sp = coo_matrix(
            (V_inv.ravel(), (np.repeat(blocks, pd, 1).ravel(), np.tile(blocks, (1, pd)).ravel())),
            shape=(self.P * pd,) * 2,
        ).tocsr()
        WV = W @ V_inv_sp
        S = U - (WV @ W.T).toarray()
        rhs = -g_c + WV @ g_p.ravel()
        d_c = np.linalg.solve(S + 1e-12 * np.eye(len(S)), rhs) if len(S) else rhs
        d_p = -np.einsum("pij,pj->pi", V_inv, g_p + (W.T @ d_c).reshape(self.P, pd))
        return d_c, d_p

    def apply(self, d_c: np.ndarray, d_p: np.ndarray) -> tuple:
        """Apply a step; returns the old values for undoing it."""
        pr, cd, pd = self.problem, self.problem.cam_dof, self.npd
        old = (pr.R.copy(), pr.t.copy(), pr.points.copy())
        d_c = d_c.reshape(-1, cd)
        pr.R[1:] = Rotation.from_rotvec(d_c[:, :3]).as_matrix() @ pr.R[1:]
        if not pr.rotation_only:
            pr.t[1:] += d_c[:, 3:]
        pr.points[:, :pd] += d_p
        return old


def bundle_adjust(
    problem: BundleProblem,
    huber_px: float = 1.0,
    prior: float = 1.0,
    max_iterations: int = 30,
    tolerance: float = 1e-4,
) -> np.ndarray:
    """Refine the problem's poses and points in place (Levenberg-Marquardt).

    Args:
        problem: observations and initial values; updated.
        huber_px: Huber loss scale in pixels.
        prior: weight of the pull of translations towards their initial values (pixels per unit
            of translation); small, it only settles what the data leave free (the scale).
        max_iterations: accepted or rejected steps at most.
        tolerance: stop when a step lowers the cost by less than this fraction.

    Returns:
        (M,) pixel errors of the observations after the adjustment (inf behind a camera).
    """
    if len(problem.obs_cam) == 0 or (len(problem.R) < 2 and len(problem.points) == 0):
        return np.zeros(len(problem.obs_cam))
    solver = _Solver(problem, huber_px, prior)
    cost, lam = solver.cost(), 1e-3
    first, iteration = cost, 0
    while iteration < max_iterations:
        iteration += 1
        U, W, V, g_c, g_p = solver.normal_equations()
        while True:
            d_c, d_p = solver.step(U, W, V, g_c, g_p, lam)
            old = solver.apply(d_c, d_p)
            new = solver.cost()
            if new < cost:
                lam = max(lam / 3, 1e-7)
                break
            problem.R, problem.t, problem.points = old
            lam *= 4
            if lam > 1e6:
                break
        if lam > 1e6 or cost - new < tolerance * cost:
            cost = min(cost, new)
            break
        cost = new
    log.debug("bundle adjustment: cost %.4g -> %.4g in %d iterations", first, cost, iteration)
    err, front = residuals(problem)
    return np.where(front, np.linalg.norm(err, axis=1), np.inf)
