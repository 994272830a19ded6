"""Where does MediaPipe put hips, against the body model's hip keypoints? (``keypoints.py``)

Renders the built-in body (``BodyConfig()``) in 4 poses x 3 shapes (mean and two random) x 7
view directions, clothed in flat colours, runs BlazePose (static mode) on each image, and fits
``adjusted - mediapipe = a (h - o) + b (shoulders_mid - hips_mid)`` by least squares over both
hips, where ``adjusted`` is the projection of ``adjust_hips`` (the model's hip keypoints), ``h``
and ``o`` MediaPipe's hip and other hip. Prints the fit and the mean distance to the adjusted
hips, in torso lengths, for a few corrections. Needs the renderer (pyrender with OSMesa)::

    python scripts/hip_study.py    # ~20 s on one core
"""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig
from slahmr_opt.body.config import load_body_model
from slahmr_opt.body.keypoints import SMPL_JOINT_NAMES, adjust_hips
from slahmr_opt.frontend.blazepose import BlazePose, SquareCrop
from slahmr_opt.frontend.keypoints import MP_NAMES
from slahmr_opt.render.backend import Camera, Renderer
from slahmr_opt.render.scene import CV_TO_GL, Mesh, vertex_normals

SIZE, FOCAL, DEPTH = 720, 900.0, 4.0
YAWS = (0, 30, -30, 60, 90, 135, 180)
ARMS = {"left_shoulder": (0, 0, -1.2), "right_shoulder": (0, 0, 1.2),
        "left_elbow": (0, -0.3, 0), "right_elbow": (0, 0.3, 0)}  # fmt: skip
POSES = {
    "stand": {},
    "walk": {"left_hip": (-0.45, 0, 0), "right_hip": (0.35, 0, 0), "left_knee": (0.3, 0, 0),
             "right_knee": (0.6, 0, 0)},
    "wide": {"left_hip": (0, 0, 0.25), "right_hip": (0, 0, -0.25)},
    "crouch": {"left_hip": (-1.0, 0, 0.2), "right_hip": (-1.0, 0, -0.2),
               "left_knee": (1.4, 0, 0), "right_knee": (1.4, 0, 0)},
}  # fmt: skip
PART_COLORS = {  # SMPL part -> colour; the rest is skin
    (0.2, 0.45, 0.85): ("spine1", "spine2", "spine3", "left_collar", "right_collar",
                        "left_shoulder", "right_shoulder"),
    (0.1, 0.1, 0.12): ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee"),
    (0.95, 0.95, 0.95): ("left_ankle", "right_ankle", "left_foot", "right_foot"),
}  # fmt: skip
SKIN = (0.87, 0.67, 0.55)


def _body_pose(changes: dict) -> np.ndarray:
    pose = np.zeros((21, 3))
    for name, rotvec in {**ARMS, **changes}.items():
        pose[SMPL_JOINT_NAMES.index(name) - 1] = rotvec
    return pose


def _colors(weights: np.ndarray) -> np.ndarray:
    part = weights.argmax(1)
    colors = np.tile(np.asarray(SKIN, np.float32), (len(part), 1))
    for color, names in PART_COLORS.items():
        colors[np.isin(part, [SMPL_JOINT_NAMES.index(n) for n in names])] = color
    return colors


def _project(points: np.ndarray) -> np.ndarray:
    return FOCAL * points[..., :2] / points[..., 2:] + SIZE / 2


def collect() -> list[np.ndarray]:
    """Rows ``(mp_left, mp_right, mp_shoulder_mid, adj_left, adj_right, torso_px)``."""
    body = load_body_model(BodyConfig(), torch.float64)
    faces = body.faces.numpy().astype(np.int32)
    colors = _colors(body.skinning_weights().numpy())
    pose_net = BlazePose(False, SIZE, 0.5, 0.5)
    rng = np.random.default_rng(0)
    rows = []
    with Renderer(SIZE, SIZE, ambient=0.45) as renderer:
        for name, changes in POSES.items():
            for shape in range(3):
                betas = torch.as_tensor(rng.normal(0, 1, (1, 10)) if shape else np.zeros((1, 10)))
                for yaw in YAWS:
                    turn = Rotation.from_euler("y", yaw, degrees=True) * Rotation.from_euler(
                        "x", 180, degrees=True
                    )  # upright in OpenCV axes, facing the camera at yaw 0
                    out = body(betas, torch.as_tensor(turn.as_rotvec())[None],
                               torch.as_tensor(_body_pose(changes))[None],
                               torch.tensor([[0.0, 0.1, DEPTH]]), return_vertices=True)  # fmt: skip
                    verts = (out.vertices[0].numpy() @ CV_TO_GL.T).astype(np.float32)
                    mesh = Mesh(verts, faces, colors, vertex_normals(verts, faces))
                    camera = Camera(intrins=np.array([FOCAL, FOCAL, SIZE / 2, SIZE / 2]))
                    rgb, _ = renderer.render([mesh], camera, background=(0.55, 0.6, 0.5))
                    found = pose_net.run(rgb, SquareCrop(0, 0, SIZE))
                    if found is None:
                        print(f"{name} shape {shape} yaw {yaw}: no person found")
                        continue
                    rows.append(_row(found.landmarks, out.joints[0]))
    pose_net.close()
    return rows


def _row(landmarks: np.ndarray, joints: torch.Tensor) -> np.ndarray:
    lhip, rhip = (
        landmarks[MP_NAMES.index("left_hip"), :2],
        landmarks[MP_NAMES.index("right_hip"), :2],
    )
    shoulders = landmarks[[MP_NAMES.index("left_shoulder"), MP_NAMES.index("right_shoulder")], :2]
    left, right, pelvis = joints[1], joints[2], joints[0]
    adj = _project(torch.stack([adjust_hips(left, right, pelvis),
                                adjust_hips(right, left, pelvis)]).numpy())  # fmt: skip
    j = joints.numpy()
    torso = np.linalg.norm(_project((j[16] + j[17]) / 2) - _project((j[1] + j[2]) / 2))
    return np.array([*lhip, *rhip, *shoulders.mean(0), *adj[0], *adj[1], torso])


def main() -> None:
    rows = np.array(collect())
    lhip, rhip, shoulders, adj_l, adj_r = (rows[:, 2 * i : 2 * i + 2] for i in range(5))
    torso = np.repeat(rows[:, 10], 2)
    mid = (lhip + rhip) / 2
    design = np.concatenate([np.stack([lhip - rhip, shoulders - mid], 2),
                             np.stack([rhip - lhip, shoulders - mid], 2)])  # fmt: skip
    target = np.concatenate([adj_l - lhip, adj_r - rhip])  # (2N, 2)
    coef, *_ = np.linalg.lstsq(design.reshape(-1, 2), target.reshape(-1), rcond=None)
    print(
        f"{len(rows)} renders; fit: outwards a = {coef[0]:.3f}, towards shoulders b = {coef[1]:.3f}"
    )
    for label, ab in (("raw", (0, 0)), ("fit", coef), ("a=0.35", (0.35, 0)), ("a=0.25", (0.25, 0))):
        error = np.linalg.norm(target - design @ np.asarray(ab, float), axis=1) / torso
        print(
            f"{label:7s} mean {error.mean():.3f}  p90 {np.percentile(error, 90):.3f} torso lengths"
        )


if __name__ == "__main__":
    main()
