"""Two-view and pose geometry on normalized image coordinates, for the camera front end.

Points are normalized image coordinates ``x_n = K^-1 [x, y, 1]`` (the first two components) of
the original image; poses are world-to-camera ``X_c = R X_w + t`` with OpenCV axes. Thresholds
are given in pixels together with the focal length ``focal`` that turns them into normalized
units.
"""

import logging

import cv2
import numpy as np

from slahmr_opt.geometry.align import kabsch

log = logging.getLogger(__name__)


def bearings(xn: np.ndarray) -> np.ndarray:
    """(N, 2) normalized coordinates -> (N, 3) unit rays."""
    rays = np.concatenate([xn, np.ones((len(xn), 1))], axis=1)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def rotation_ransac(
    fa: np.ndarray,
    fb: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
    hypotheses: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pure-rotation model ``fb ~ R fa`` by 2-point RANSAC and a Kabsch refit on the inliers.

    Args:
        fa, fb: (N, 3) unit rays of the same points in views a and b (``bearings``), N >= 2.
        threshold: inlier threshold in normalized units (image-plane distance in view b).

    Returns:
        (3, 3) ``R_ba``, (N,) bool inliers and (N,) residuals (normalized units).
    """
    n = len(fa)
    pairs = rng.integers(0, n, size=(hypotheses, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) == 0:
        pairs = np.array([[0, min(1, n - 1)]])
    rots = kabsch(fa[pairs], fb[pairs])  # (M, 3, 3)
    errors = _rotation_errors(rots, fa, fb)  # (M, N)
    best = int(np.argmax((errors < threshold).sum(1)))
    inliers = errors[best] < threshold
    rot = rots[best]
    for _ in range(3):
        if inliers.sum() < 2:
            break
        rot = kabsch(fa[inliers], fb[inliers])
        inliers = _rotation_errors(rot[None], fa, fb)[0] < threshold
    return rot, inliers, _rotation_errors(rot[None], fa, fb)[0]


def _rotation_errors(rots: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """(M, N) image-plane distances between ``R fa`` projected and ``fb`` projected."""
    pred = np.einsum("mij,nj->mni", rots, fa)
    z = np.maximum(pred[..., 2], 1e-6)
    proj = pred[..., :2] / z[..., None]
    err = np.linalg.norm(proj - fb[None, :, :2] / fb[None, :, 2:], axis=-1)
    return np.where(pred[..., 2] > 1e-6, err, np.inf)


def relative_pose(
    xa: np.ndarray, xb: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Relative motion from the essential matrix: ``X_b = R X_a + t`` with ``|t| = 1``.

    Args:
        xa, xb: (N, 2) normalized coordinates, N >= 5.
        threshold: RANSAC threshold in normalized units.

    Returns:
        ``(R, t, inliers)`` or None when no essential matrix is found.
    """
    if len(xa) < 8:
        return None
    eye = np.eye(3)
    E, mask = cv2.findEssentialMat(
        xa, xb, eye, method=cv2.RANSAC, prob=0.999, threshold=threshold, maxIters=2000
    )
    if E is None or E.shape != (3, 3):
        return None
    count, R, t, mask = cv2.recoverPose(E, xa, xb, eye, mask=mask)
    if count < 8:
        return None
    return R, t.ravel() / np.linalg.norm(t), mask.ravel() > 0


def triangulate(
    xa: np.ndarray, xb: np.ndarray, pose_a: tuple, pose_b: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """Two-view linear triangulation (DLT).

    Args:
        xa, xb: (N, 2) normalized coordinates.
        pose_a, pose_b: world-to-camera ``(R (3, 3), t (3,))``.

    Returns:
        (N, 3) world points and (N,) parallax angles between the two rays, radians.
    """
    Pa = np.concatenate([pose_a[0], pose_a[1][:, None]], axis=1)
    Pb = np.concatenate([pose_b[0], pose_b[1][:, None]], axis=1)
    rows = np.stack(
        [
            xa[:, :1] * Pa[2] - Pa[0],
            xa[:, 1:] * Pa[2] - Pa[1],
            xb[:, :1] * Pb[2] - Pb[0],
            xb[:, 1:] * Pb[2] - Pb[1],
        ],
        axis=1,
    )  # (N, 4, 4)
    _, _, vt = np.linalg.svd(rows)
    hom = vt[:, -1]
    points = hom[:, :3] / np.where(np.abs(hom[:, 3:]) > 1e-12, hom[:, 3:], 1e-12)
    ray_a = bearings(xa) @ pose_a[0]  # world directions: R^T f
    ray_b = bearings(xb) @ pose_b[0]
    angle = np.arccos(np.clip(np.sum(ray_a * ray_b, axis=1), -1, 1))
    return points, angle


def project(points: np.ndarray, pose: tuple) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> normalized coordinates (N, 2) and depths (N,) in a camera."""
    cam = points @ pose[0].T + pose[1]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-9, z, 1e-9)
    return cam[:, :2] / safe[:, None], z


def pnp(
    points: np.ndarray,
    xn: np.ndarray,
    guess: tuple,
    threshold: float,
    min_inliers: int,
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray] | None:
    """Camera pose from 3D-2D matches: RANSAC PnP started at ``guess``, then LM on the inliers.

    Args:
        points: (N, 3) world points; xn: (N, 2) normalized coordinates.
        guess: world-to-camera ``(R, t)`` to start from.
        threshold: inlier threshold in normalized units.
        min_inliers: fewer inliers than this is a failure.

    Returns:
        ``((R, t), inliers (N,) bool)`` or None.
    """
    if len(points) < max(6, min_inliers):
        return None
    eye = np.eye(3)
    rvec = cv2.Rodrigues(guess[0])[0]
    tvec = guess[1].reshape(3, 1).astype(np.float64).copy()
    ok, rvec, tvec, inl = cv2.solvePnPRansac(
        points.astype(np.float64),
        xn.astype(np.float64),
        eye,
        None,
        rvec=rvec,
        tvec=tvec,
        useExtrinsicGuess=True,
        iterationsCount=200,
        reprojectionError=threshold,
        confidence=0.999,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok or inl is None or len(inl) < min_inliers:
        return None
    mask = np.zeros(len(points), bool)
    mask[inl.ravel()] = True
    rvec, tvec = cv2.solvePnPRefineLM(points[mask], xn[mask], eye, None, rvec, tvec)
    R = cv2.Rodrigues(rvec)[0]
    pose = (R, tvec.ravel())
    proj, z = project(points, pose)
    mask = (np.linalg.norm(proj - xn, axis=1) < threshold) & (z > 0)
    if mask.sum() < min_inliers:
        return None
    return pose, mask


def background_motion(
    tracks, grid: int = 5, min_points: int = 12, rel_keep: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """How far the background has moved since the first frame, and the frame-to-frame flow.

    Each frame is registered to a reference frame by a RANSAC homography of the tracks they
    share; the reference moves on (and homographies are chained) only when fewer than
    ``rel_keep`` of its tracks are left, so a static camera is compared with frame 0 directly.

    Args:
        tracks: ``camera_tracks.Tracks``.

    Returns:
        (T,) mean displacement of a grid of image points since frame 0, tracking pixels, at most
        the image diagonal (a camera that translates shows parallax that no homography fits, and
        a chain of them can send the grid towards infinity: beyond the diagonal the number means
        only "the background moved a lot"), and (T,) median frame-to-frame flow of the tracks
        (0 for frame 0), tracking pixels.
    """
    h, w = tracks.size
    gx, gy = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid))
    probe = np.stack([gx.ravel(), gy.ravel()], axis=1).reshape(-1, 1, 2)
    num = tracks.num_frames
    moved, flow = np.zeros(num), np.zeros(num)
    ref, H_ref, H_prev = 0, np.eye(3), np.eye(3)
    for t in range(1, num):
        _, a, b = tracks.common(t - 1, t)
        flow[t] = np.median(np.linalg.norm(b - a, axis=1)) if len(a) else 0.0
        _, a, b = tracks.common(ref, t)
        if len(a) < max(min_points, rel_keep * len(tracks.ids[ref])) and ref != t - 1:
            ref, H_ref = t - 1, H_prev
            _, a, b = tracks.common(ref, t)
        H = None
        if len(a) >= min_points:
            H, _ = cv2.findHomography(a, b, cv2.RANSAC, 2.0, maxIters=500)
        H_t = H @ H_ref if H is not None else H_prev
        warped = cv2.perspectiveTransform(probe, H_t)
        moved[t] = np.mean(np.linalg.norm((warped - probe).reshape(-1, 2), axis=1))
        H_prev = H_t
    return np.minimum(np.nan_to_num(moved, nan=np.inf), np.hypot(h, w)), flow
