"""Render a known body into the synthetic courtyard: the frames of the rendered-video benchmark.

The body (the built-in mesh, coloured by body part: skin, hair, shirt, trousers, shoes) is drawn
by pyrender (``slahmr_opt.render.backend``) in the ground-truth world (y up, metres); the
courtyard (``slahmr_opt.synth.camera_video``: ground, walls, boxes, y down, ground at
``y = 1.5``) is ray-cast by its own renderer; the two are composited per pixel by depth, so
boxes hide the body where they stand in front of it.

``ScenePlacement`` maps the ground-truth world into the courtyard's by a rotation about the
vertical (the long axis of the person's and the camera's paths along the courtyard's x, where
it has room) and a translation (the floor on the courtyard's ground, the paths centred in the
half of the courtyard without boxes). Extrinsics stay in the ground-truth world everywhere
else.
"""

from dataclasses import dataclass

import numpy as np
import torch

from slahmr_opt.body import BodyModel
from slahmr_opt.render.scene import CV_TO_GL, Mesh, vertex_normals
from slahmr_opt.synth.camera_video import courtyard, render_frame

#: RGB in [0, 1] of the clothing and skin.
COLORS = {
    "skin": (0.86, 0.64, 0.50),
    "hair": (0.18, 0.12, 0.08),
    "shirt": (0.15, 0.32, 0.72),
    "trousers": (0.22, 0.22, 0.28),
    "shoes": (0.08, 0.08, 0.08),
}
#: SMPL joint -> part, by the joint a vertex is mostly skinned to (short sleeves: forearms skin).
PART_OF_JOINT = {
    0: "trousers", 1: "trousers", 2: "trousers", 4: "trousers", 5: "trousers",
    7: "shoes", 8: "shoes", 10: "shoes", 11: "shoes",
    3: "shirt", 6: "shirt", 9: "shirt", 13: "shirt", 14: "shirt", 16: "shirt", 17: "shirt",
    12: "skin", 15: "skin", 18: "skin", 19: "skin", 20: "skin", 21: "skin", 22: "skin",
    23: "skin",
}  # fmt: skip
HEAD_JOINT = 15
SCENE_GROUND_Y = 1.5
"""The courtyard's ground height (its y axis points down)."""
SCENE_CENTRE_XZ = (0.0, -5.5)
"""Where the paths are centred in the courtyard: its boxes stand at z > 2.5."""
NOISE_GREY_LEVELS = 2.0
"""Standard deviation of the pixel noise added to every frame, grey levels."""


def body_part_colors(body: BodyModel) -> np.ndarray:
    """(V, 3) float32 RGB per vertex: a part per dominant skinning joint (``PART_OF_JOINT``),
    hair on the top and back of the head (rest pose, the model's y up and z forward)."""
    weights = body.skinning_weights().detach().double().cpu().numpy()
    joint = weights.argmax(1)
    colors = np.array([COLORS[PART_OF_JOINT[int(j)]] for j in joint], np.float32)
    with torch.no_grad():
        rest = body.rest_pose(torch.zeros(1, body.num_betas, dtype=body.dtype))
    verts = rest.vertices.reshape(-1, 3).double().numpy()
    head_j = rest.joints.reshape(-1, 3)[HEAD_JOINT].double().numpy()
    on_head = joint == HEAD_JOINT
    rel = verts - head_j
    hair = on_head & ((rel[:, 1] > 0.06) | ((rel[:, 2] < -0.02) & (rel[:, 1] > -0.04)))
    colors[hair] = COLORS["hair"]
    return colors


@dataclass
class ScenePlacement:
    """``x_scene = R @ x_gt + t``: the ground-truth world (y up) in the courtyard (y down).

    Attributes:
        R: (3, 3) rotation (a half turn about x after a turn about the vertical).
        t: (3,) translation, metres.
    """

    R: np.ndarray
    t: np.ndarray

    @staticmethod
    def fit(floor_y: float, points_xz: np.ndarray) -> "ScenePlacement":
        """The placement that puts ``floor_y`` on the courtyard's ground and the (N, 2) path
        points (pelvis and camera centres, ground-truth x and z) along the courtyard's x axis
        (their principal axis), their bounding box centred on ``SCENE_CENTRE_XZ``."""
        spread = points_xz - points_xz.mean(0)
        major = np.array([1.0, 0.0])
        if len(points_xz) > 1 and np.abs(spread).max() > 1e-6:
            major = np.linalg.svd(spread, full_matrices=False)[2][0]
        c, s = major
        yaw = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # about y: major -> +x
        R = np.diag([1.0, -1.0, -1.0]) @ yaw
        turned = np.stack([points_xz[:, 0], np.full(len(points_xz), floor_y), points_xz[:, 1]],
                          1) @ R.T  # fmt: skip
        anchor = 0.5 * (turned.min(0) + turned.max(0))
        target = np.array([SCENE_CENTRE_XZ[0], SCENE_GROUND_Y, SCENE_CENTRE_XZ[1]])
        return ScenePlacement(R, target - anchor)

    def camera_c2w(self, R_w2c: np.ndarray, t_w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scene camera-to-world rotation (3, 3) and centre (3,) of a ground-truth
        world-to-camera ``R_w2c`` (3, 3), ``t_w2c`` (3,)."""
        centre_gt = -R_w2c.T @ t_w2c
        return self.R @ R_w2c.T, self.R @ centre_gt + self.t


def gl_pose(R_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """(4, 4) OpenGL camera-to-world pose of an OpenCV world-to-camera ``R (3, 3)``, ``t (3,)``."""
    pose = np.eye(4)
    pose[:3, :3] = R_w2c.T @ CV_TO_GL
    pose[:3, 3] = -R_w2c.T @ t_w2c
    return pose


class BodyVideoRenderer:
    """Draws frames of one body in the courtyard (pyrender for the body, ray casting for the
    scene). Use as a context manager (it holds an OpenGL context).

    Args:
        faces: (F, 3) mesh triangles; colors: (V, 3) vertex colours in [0, 1].
        image_size: ``(H, W)`` pixels.
        placement: the ground-truth world in the courtyard.
        seed: the courtyard's textures and the pixel noise.
    """

    def __init__(
        self,
        faces: np.ndarray,
        colors: np.ndarray,
        image_size: tuple[int, int],
        placement: ScenePlacement,
        seed: int = 0,
    ):
        from slahmr_opt.render.backend import Renderer

        self.faces = np.asarray(faces, np.int32)
        self.colors = np.asarray(colors, np.float32)
        self.image_size = image_size
        self.placement = placement
        self.rects = courtyard(seed)
        self.rng = np.random.default_rng(seed)
        H, W = image_size
        self._gl = Renderer(W, H, ambient=0.45)

    def render(
        self, vertices: np.ndarray, R_w2c: np.ndarray, t_w2c: np.ndarray, intrins: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame.

        Args:
            vertices: (V, 3) body vertices, ground-truth world, metres.
            R_w2c, t_w2c: (3, 3), (3,) ground-truth world-to-camera (OpenCV axes).
            intrins: (4,) ``[fx, fy, cx, cy]``.

        Returns:
            (H, W, 3) uint8 RGB and (H, W) bool mask of the visible body.
        """
        from slahmr_opt.render.backend import Camera

        v = np.asarray(vertices, np.float32)
        mesh = Mesh(v, self.faces, self.colors, vertex_normals(v, self.faces))
        pose = gl_pose(R_w2c, t_w2c)
        body_rgb, body_depth = self._gl.render(
            [mesh], Camera(intrins=np.asarray(intrins), pose=pose), lights=[(pose, 3.0)]
        )
        R_c2w, centre = self.placement.camera_c2w(R_w2c, t_w2c)
        scene_rgb, _, scene_depth = render_frame(
            self.rects, np.asarray(intrins), R_c2w, centre, self.image_size, with_depth=True
        )
        mask = (body_depth > 0) & (body_depth < scene_depth)
        frame = np.where(mask[..., None], body_rgb, scene_rgb).astype(np.float32)
        frame += self.rng.normal(0, NOISE_GREY_LEVELS, frame.shape)
        return np.clip(frame, 0, 255).astype(np.uint8), mask

    def close(self) -> None:
        self._gl.close()

    def __enter__(self) -> "BodyVideoRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
