"""World- and camera-frame metrics with the semantics of the field's evaluation code.

Definitions (``shared/research/peers.md`` section 3, as in WHAM/GVHMR/SLAHMR):

* W-MPJPE100: per 100-frame chunk (``range(0, L, 100)``, last chunk may be short), a similarity
  (Umeyama, with scale) fitted on the chunk's first two frames' joints is applied to the whole
  chunk; mean joint error in mm.
* WA-MPJPE100: the same with the similarity fitted on all joints of the chunk.
* PA-MPJPE: a similarity fitted per frame.
* MPJPE: per frame after subtracting the pelvis (mid-point of the two hips, SMPL joints 1, 2).
* Averages are over all frames of all sequences (frame-weighted), in millimetres.
"""

import numpy as np
from scipy.spatial.transform import Rotation

CHUNK = 100
HIPS = (1, 2)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True):
    """Similarity ``(s, R, t)`` minimising ``sum ||s R src_i + t - dst_i||^2``.

    Args:
        src, dst: (N, 3) corresponding points.
        with_scale: fit the scale (else s = 1: a rigid fit).

    Returns:
        ``s`` float, ``R`` (3, 3), ``t`` (3,).
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    # align_vectors(a=targets, b=sources) finds R with R b ~ a (Kabsch on centred points).
    rot, _ = Rotation.align_vectors(b, a)
    R = rot.as_matrix()
    s = float(np.sum(b * (a @ R.T)) / max(np.sum(a * a), 1e-12)) if with_scale else 1.0
    return s, R, mu_d - s * R @ mu_s


def _apply(sim, points: np.ndarray) -> np.ndarray:
    s, R, t = sim
    return s * points @ R.T + t


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
        errors.append(_frame_errors(_apply(sim, pred[start:end]), gt[start:end]))
    return np.concatenate(errors)


def pa_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame PA-MPJPE (mm): a similarity fitted per frame. (T, J, 3) inputs."""
    return np.array(
        [_frame_errors(_apply(umeyama(p, g), p)[None], g[None])[0] for p, g in zip(pred, gt)]
    )


def mpjpe_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE (mm) after aligning the hip mid-points. (T, J, 3) inputs."""

    def centre(x):
        return x - x[:, list(HIPS)].mean(1, keepdims=True)

    return _frame_errors(centre(pred), centre(gt))


def sequence_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame errors of every joint metric for one person's valid frames."""
    return {
        "w_mpjpe100": chunked_world_errors(pred, gt, first_two=True),
        "wa_mpjpe100": chunked_world_errors(pred, gt, first_two=False),
        "pa_mpjpe": pa_errors(pred, gt),
        "mpjpe": mpjpe_errors(pred, gt),
    }


def summarize(per_frame: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Frame-weighted means over sequences (concatenate, then average), in mm."""
    keys = per_frame[0].keys() if per_frame else []
    return {k: float(np.concatenate([e[k] for e in per_frame]).mean()) for k in keys}
