"""What the regressor sees of a person in each frame (torch only; training and use share it).

Keypoint layout (K = 23): COCO-17 in its own order, then the six OpenPose foot points (left big
toe, small toe, heel, right big toe, small toe, heel). OpenPose-25 input maps onto it directly
(its neck and mid-hip are left out: detectors place them differently); COCO-17 input leaves the
feet missing. Only whether a keypoint was detected is used, not its confidence, because
confidences of different detectors (ViTPose, BlazePose, OpenPose) are not comparable.

Per frame the features are (F = 3 K + 7 = 76):

* the keypoints relative to the person's box, ``2 (uv - c) / s`` (box centre ``c``, side ``s`` =
  1.2 times the larger extent of the detected keypoints), 0 where missing, and the detection flags;
* where the box sits in the camera, as CLIFF encodes it: ``((c - principal point) / f, s / f)``;
  without it a person off the image centre, seen obliquely, would look like a turned body;
* whether the person was detected in the frame (missing frames carry the box interpolated from
  their neighbours and no keypoints);
* the camera's angular velocity in its own frame (rad/s; zero for a static camera), so that the
  world motion can be told from the camera's.

The network runs at ``FPS`` frames per second; inputs at another rate are resampled to it.
"""

import torch
from torch import Tensor

FPS = 30.0
COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
FOOT_NAMES = (
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
KEYPOINT_NAMES = COCO17_NAMES + FOOT_NAMES
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
#: Index of each regressor keypoint in OpenPose-25 (BODY_25) order.
FROM_OP25 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11, 19, 20, 21, 22, 23, 24)
#: Regressor slots of the left/right keypoint pairs (swapped by mirroring).
MIRROR_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
                (17, 20), (18, 21), (19, 22))  # fmt: skip
FACE = (0, 1, 2, 3, 4)
FEET = (17, 18, 19, 20, 21, 22)
NUM_FEATURES = 3 * NUM_KEYPOINTS + 7
BOX_SCALE = 1.2
MIN_BOX_KEYPOINTS = 2


def to_layout(kp: Tensor, kp_format: str) -> Tensor:
    """(..., 17 or 25, C) keypoints of ``kp_format`` -> (..., 23, C) in the regressor's layout."""
    if kp_format == "op25":
        return kp[..., list(FROM_OP25), :]
    if kp_format == "coco17":
        feet = kp.new_zeros((*kp.shape[:-2], len(FEET), kp.shape[-1]))
        return torch.cat([kp, feet], dim=-2)
    raise ValueError(f"unknown keypoint format {kp_format!r}")


def _interpolate_missing(x: Tensor, have: Tensor) -> Tensor:
    """(..., T, D) values known where ``have`` (..., T): linear in time, held at the ends."""
    out = x.clone()
    T = x.shape[-2]
    t = torch.arange(T, dtype=x.dtype)
    flat_x, flat_have = out.reshape(-1, T, x.shape[-1]), have.reshape(-1, T)
    for i in range(flat_x.shape[0]):
        known = torch.nonzero(flat_have[i])[:, 0]
        if len(known) == 0 or len(known) == T:
            continue
        idx = torch.searchsorted(known, t).clamp(1, max(len(known) - 1, 1))
        lo, hi = known[idx - 1], known[idx.clamp(max=len(known) - 1)]
        w = ((t - lo) / (hi - lo).clamp(min=1)).clamp(0, 1)[:, None]
        flat_x[i] = flat_x[i, lo] * (1 - w) + flat_x[i, hi] * w
    return out


def boxes(uv: Tensor, vis: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Square person boxes from detected keypoints.

    Args:
        uv: (..., T, K, 2) pixels; vis: (..., T, K) bool.

    Returns:
        ``centre`` (..., T, 2), ``side`` (..., T) in pixels (interpolated over frames with fewer
        than two detected keypoints) and ``detected`` (..., T) bool.
    """
    big = torch.finfo(uv.dtype).max
    lo = torch.where(vis[..., None], uv, uv.new_tensor(big)).amin(-2)
    hi = torch.where(vis[..., None], uv, uv.new_tensor(-big)).amax(-2)
    detected = vis.sum(-1) >= MIN_BOX_KEYPOINTS
    centre = torch.where(detected[..., None], 0.5 * (lo + hi), 0.0)
    side = torch.where(detected, BOX_SCALE * (hi - lo).amax(-1).clamp(min=1.0), 1.0)
    box = _interpolate_missing(torch.cat([centre, side[..., None]], -1), detected)
    return box[..., :2], box[..., 2].clamp(min=1.0), detected


def make_features(uv: Tensor, vis: Tensor, intrins: Tensor, cam_angvel: Tensor) -> Tensor:
    """Per-frame input features of the regressor.

    Args:
        uv: (..., T, 23, 2) keypoints in pixels, regressor layout.
        vis: (..., T, 23) bool, detected keypoints.
        intrins: (..., T, 4) ``[fx, fy, cx, cy]``.
        cam_angvel: (..., T, 3) camera angular velocity in the camera frame, rad/s.

    Returns:
        (..., T, NUM_FEATURES) float32.
    """
    uv, intrins = uv.float(), intrins.float()
    vis = vis & torch.isfinite(uv).all(-1)
    uv = torch.nan_to_num(uv)
    centre, side, detected = boxes(uv, vis)
    vis = vis & detected[..., None]
    rel = 2.0 * (uv - centre[..., None, :]) / side[..., None, None]
    rel = torch.where(vis[..., None], rel, 0.0).clamp(-3.0, 3.0)
    f = intrins[..., :2].mean(-1)
    box = torch.cat([(centre - intrins[..., 2:]) / f[..., None], (side / f)[..., None]], -1)
    return torch.cat(
        [rel.flatten(-2), vis.float(), box, detected[..., None].float(), cam_angvel.float()], -1
    )


def camera_angular_velocity(R_w2c: Tensor, fps: float) -> Tensor:
    """(T, 3) angular velocity (rad/s) of cameras ``R_w2c`` (T, 3, 3), in each camera's frame.

    The rotation from frame t-1's camera to frame t's is ``R_t R_{t-1}^T``; its rotation vector
    (``vee`` of the skew part: exact enough at video rates) times fps; frame 0 copies frame 1.
    """
    if R_w2c.shape[0] < 2:
        return R_w2c.new_zeros(R_w2c.shape[0], 3)
    D = R_w2c[1:] @ R_w2c[:-1].transpose(-1, -2)
    skew = 0.5 * (D - D.transpose(-1, -2))
    w = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1) * fps
    return torch.cat([w[:1], w], 0)
