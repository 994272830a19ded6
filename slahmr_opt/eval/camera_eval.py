"""Accuracy of estimated camera trajectories against the truth (synthetic videos).

Both trajectories are camera-to-world with the first camera at the origin and identity
rotation, so rotations compare directly. Translations are compared after the similarity
(rotation, translation, scale) that best maps the estimated camera centres onto the true ones
(Umeyama, 1991), because a monocular estimate has no scale.
"""

from dataclasses import dataclass

import numpy as np

from slahmr_opt.geometry.align import umeyama


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angles (...,) in degrees of rotation matrices (..., 3, 3)."""
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@dataclass
class TrajectoryError:
    """Errors of an estimated trajectory.

    Attributes:
        rot_drift_deg_per_s: mean over 1 s windows of the angle between estimated and true
            relative rotations, divided by the window length.
        rot_abs_deg: mean angle between estimated and true rotations (first frames agree).
        rot_max_deg: largest such angle.
        ate_m: RMS camera-centre error after Sim(3) alignment, metres of the true scene.
        ate_rel: ``ate_m`` divided by the true path length (nan for a path shorter than 1 cm).
        path_m: true path length in metres.
        est_translation_rel: estimated path length relative to the median scene depth, as
            estimated (about 0 for a pan); nan when no depth unit is known.
    """

    rot_drift_deg_per_s: float
    rot_abs_deg: float
    rot_max_deg: float
    ate_m: float
    ate_rel: float
    path_m: float
    est_translation_rel: float = float("nan")


def trajectory_error(
    R_est: np.ndarray,
    t_est: np.ndarray,
    R_true: np.ndarray,
    t_true: np.ndarray,
    fps: float,
    window_s: float = 1.0,
) -> TrajectoryError:
    """Compare camera-to-world trajectories (T, 3, 3) / (T, 3); see ``TrajectoryError``."""
    num = len(R_est)
    w = max(1, min(num - 1, int(round(window_s * fps))))
    rel_est = np.einsum("tji,tjk->tik", R_est[:-w], R_est[w:])
    rel_true = np.einsum("tji,tjk->tik", R_true[:-w], R_true[w:])
    drift = rotation_angle_deg(np.einsum("tji,tjk->tik", rel_true, rel_est)).mean() / (w / fps)
    absolute = rotation_angle_deg(np.einsum("tji,tjk->tik", R_true, R_est))
    path = float(np.linalg.norm(np.diff(t_true, axis=0), axis=1).sum())
    est_path = float(np.linalg.norm(np.diff(t_est, axis=0), axis=1).sum())
    if path < 1e-2:
        # nothing to align with: report how far the estimate wanders, in its own units
        ate = float(np.sqrt(np.mean(np.sum((t_est - t_est[0]) ** 2, axis=1))))
        return TrajectoryError(drift, absolute.mean(), absolute.max(), ate, np.nan, path, est_path)
    s, R, t = umeyama(t_est, t_true)
    aligned = s * t_est @ R.T + t
    ate = float(np.sqrt(np.mean(np.sum((aligned - t_true) ** 2, axis=1))))
    return TrajectoryError(
        float(drift), float(absolute.mean()), float(absolute.max()), ate, ate / path, path, est_path
    )
