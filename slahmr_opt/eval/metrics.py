"""World- and camera-frame metrics with the semantics of the field's evaluation code.

Definitions (``shared/research/peers.md`` section 3, as in WHAM/GVHMR/SLAHMR):

* W-MPJPE100: per 100-frame chunk (``range(0, L, 100)``, last chunk may be short), a similarity
  (Umeyama, with scale) fitted on the chunk's first two frames' joints is applied to the whole
  chunk; mean joint error in mm.
* WA-MPJPE100: the same with the similarity fitted on all joints of the chunk.
* PA-MPJPE: a similarity fitted per frame.
* MPJPE: per frame after subtracting the pelvis (mid-point of the two hips, SMPL joints 1, 2).
  ``evaluate`` applies it (and PA-MPJPE, PVE, accel) to camera-frame joints: predicted joints in
  the predicted camera against true joints in the true camera.
* PVE: mean vertex error (mm) after the same hip-midpoint offset as MPJPE.
* RTE (%): a rigid fit (Umeyama, no scale) of the whole sequence's root trajectory, per-frame
  error divided by the true path length, x100. The root is joint 0 (GVHMR / TRAM; WHAM uses the
  SMPL ``transl`` parameter instead).
* Jitter (10 m/s^3): the predicted world joints' jerk, mean over joints, /10. Uses the sequence's
  fps; the field's code hard-codes 30.
* Foot sliding (mm): predicted displacement of four foot points (left/right big toe and heel) on
  the frames where the true point moves less than 1 cm. One value per contact (point, frame).
* Accel error (m/s^2): second difference of prediction minus truth, mean over joints, x fps^2.
* Facing off (%): frames whose body forward axis (the root's +z) is more than 45 degrees from the
  truth's, both in their camera frames (a body facing the wrong way fits 2D keypoints almost as
  well; this counts it). Not a field metric.
* Averages are over all frames of all sequences (frame-weighted). Like the field, differences
  (jitter, accel, foot sliding) run over the valid frames as concatenated.
"""

import numpy as np

from slahmr_opt.geometry.align import umeyama

CHUNK = 100
HIPS = (1, 2)
CONTACT_THRESHOLD = 0.01
"""Metres a true foot point may move between frames and still count as in contact."""


def _frame_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T,) mean joint distance per frame, mm."""
    return np.linalg.norm(pred - gt, axis=-1).mean(-1) * 1000.0


def chunked_world_errors(pred: np.ndarray, gt: np.ndarray, first_two: bool) -> np.ndarray:
    """Per-frame errors (mm) of W-MPJPE100 (``first_two``) or WA-MPJPE100.

    Args:
        pred, gt: (T, J, 3) world joints of the valid frames, metres.
    """
    errors = []
    for start in range(0, len(gt), CHUNK):
        end = min(len(gt), start + CHUNK)
        fit = slice(start, start + 2) if first_two else slice(start, end)
        sim = umeyama(pred[fit].reshape(-1, 3), gt[fit].reshape(-1, 3))
        errors.append(_frame_errors(sim.apply(pred[start:end]), gt[start:end]))
    return np.concatenate(errors)


def pa_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame PA-MPJPE (mm): a similarity fitted per frame. (T, J, 3) inputs."""
    return np.array(
        [_frame_errors(umeyama(p, g).apply(p)[None], g[None])[0] for p, g in zip(pred, gt)]
    )


def hip_centre(joints: np.ndarray) -> np.ndarray:
    """(T, 1, 3) mid-point of the two hips of (T, 24, 3) SMPL joints."""
    return joints[:, list(HIPS)].mean(1, keepdims=True)


def mpjpe_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE (mm) after aligning the hip mid-points. (T, J, 3) inputs."""
    return _frame_errors(pred - hip_centre(pred), gt - hip_centre(gt))


def pve_errors(
    pred_verts: np.ndarray, gt_verts: np.ndarray, pred_joints: np.ndarray, gt_joints: np.ndarray
) -> np.ndarray:
    """Per-frame PVE (mm): (T, V, 3) vertices, each offset by its own (T, 24, 3) joints' hips."""
    return _frame_errors(pred_verts - hip_centre(pred_joints), gt_verts - hip_centre(gt_joints))


def to_camera(points_w: np.ndarray, R_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """(T, N, 3) world points -> camera frame, with (T, 3, 3) / (T, 3) world-to-camera poses."""
    return np.einsum("tij,tnj->tni", R_w2c, points_w) + t_w2c[:, None]


def rte_errors(pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Per-frame root translation error (% of the true path length).

    Args:
        pred_root, gt_root: (T, 3) root trajectories, metres (``evaluate`` passes joint 0).
    Returns:
        (T,) errors after one rigid (no scale) fit over the whole sequence; empty when the true
        root does not move (the path length is zero and RTE is undefined).
    """
    path = np.linalg.norm(np.diff(gt_root, axis=0), axis=-1).sum()
    if path < 1e-9:
        return np.zeros(0)
    aligned = umeyama(pred_root, gt_root, with_scale=False).apply(pred_root)
    return np.linalg.norm(aligned - gt_root, axis=-1) / path * 100.0


def jitter(joints: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame jitter (10 m/s^3) of (T, J, 3) world joints, metres: (T-3,) values."""
    jerk = joints[3:] - 3 * joints[2:-1] + 3 * joints[1:-2] - joints[:-3]
    return np.linalg.norm(jerk * fps**3, axis=-1).mean(-1) / 10.0


def accel_errors(pred: np.ndarray, gt: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame acceleration error (m/s^2) of (T, J, 3) joints, metres: (T-2,) values."""

    def accel(x):
        return x[:-2] - 2 * x[1:-1] + x[2:]

    return np.linalg.norm(accel(pred) - accel(gt), axis=-1).mean(-1) * fps**2


def foot_sliding(pred_feet: np.ndarray, gt_feet: np.ndarray) -> np.ndarray:
    """Foot sliding (mm): one value per (frame step, point) where the true point is in contact.

    Args:
        pred_feet, gt_feet: (T, 4, 3) foot points (left big toe, left heel, right big toe, right
            heel), metres.
    Returns:
        The predicted displacement of each point over each frame step in which the true point
        moved less than ``CONTACT_THRESHOLD``, mm (flattened, frame-major).
    """
    contact = np.linalg.norm(np.diff(gt_feet, axis=0), axis=-1) < CONTACT_THRESHOLD
    return np.linalg.norm(np.diff(pred_feet, axis=0), axis=-1)[contact] * 1000.0


def sequence_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame errors of every joint metric for one person's valid frames."""
    return {
        "w_mpjpe100": chunked_world_errors(pred, gt, first_two=True),
        "wa_mpjpe100": chunked_world_errors(pred, gt, first_two=False),
        "pa_mpjpe": pa_errors(pred, gt),
        "mpjpe": mpjpe_errors(pred, gt),
    }


FACING_LIMIT_DEG = 45.0


def facing_errors(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """Per-frame facing errors: 100 where the forward axes differ by more than 45 degrees, else 0.

    Args:
        R_pred, R_gt: (T, 3, 3) body-to-camera root rotations (column 2: the body's forward axis).
    """
    cos = np.clip((R_pred[..., :, 2] * R_gt[..., :, 2]).sum(-1), -1.0, 1.0)
    return 100.0 * (np.degrees(np.arccos(cos)) > FACING_LIMIT_DEG)


def summarize(per_frame: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Frame-weighted means over sequences (concatenate, then average); NaN where no values."""
    keys = per_frame[0].keys() if per_frame else []
    out = {}
    for k in keys:
        values = np.concatenate([e[k] for e in per_frame])
        out[k] = float(values.mean()) if values.size else float("nan")
    return out
