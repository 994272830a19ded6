"""Geometry of the two rendered views, in plain numpy (no OpenGL here).

Conventions: ``results.npz`` cameras are OpenCV (x right, y down, z forward); the renderer's
are OpenGL (x right, y up, looking along -z), so a camera-frame point goes from one to the
other by flipping y and z (a 180 degree turn about x, which keeps triangle winding).

The world view is drawn in a *ground frame*: y up, the floor at y = 0, the first camera above
the origin looking along +z. It is the result's own world frame when the fit aligned it to the
floor; otherwise it is built from ``floor_plane`` or, without a floor, from the cameras' down
axis and the lowest joints.
"""

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: OpenCV camera frame -> OpenGL camera frame.
CV_TO_GL = np.diag([1.0, -1.0, -1.0])

#: One colour per track (RGB in [0, 1]), chosen to stand out on video frames and on the floor.
TRACK_COLORS = np.array([
    [0.35, 0.60, 1.00], [1.00, 0.45, 0.30], [0.35, 0.85, 0.45], [0.95, 0.80, 0.25],
    [0.80, 0.45, 0.95], [0.25, 0.85, 0.90], [1.00, 0.55, 0.75], [0.65, 0.80, 0.30],
])  # fmt: skip
FLOOR_COLORS = np.array([[0.78, 0.78, 0.78], [0.62, 0.62, 0.62]])
PATH_COLOR = np.array([0.25, 0.25, 0.25])
FRUSTUM_COLOR = np.array([0.95, 0.35, 0.10])


def track_color(p: int) -> np.ndarray:
    """(3,) RGB in [0, 1] of track ``p``."""
    return TRACK_COLORS[p % len(TRACK_COLORS)]


@dataclass
class Mesh:
    """A triangle mesh ready to hand to the renderer.

    Attributes:
        vertices: (N, 3) float32 positions, metres.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        colors: (N, 3) float32 RGB in [0, 1].
        normals: (N, 3) float32 unit vertex normals.
    """

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray
    normals: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) unit area-weighted vertex normals of a (N, 3) / (F, 3) mesh."""
    tri = vertices[faces]  # (F, 3, 3)
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # (F, 3), |n| = 2 area
    idx = faces.reshape(-1)
    n = np.stack(
        [np.bincount(idx, np.repeat(face_n[:, k], 3), minlength=len(vertices)) for k in range(3)],
        axis=1,
    )
    return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def make_mesh(vertices: np.ndarray, faces: np.ndarray, color: np.ndarray) -> Mesh:
    """A one-colour mesh with computed vertex normals."""
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces, dtype=np.int32)
    colors = np.broadcast_to(np.asarray(color, np.float32), v.shape).copy()
    return Mesh(v, f, colors, vertex_normals(v, f))


def merge_meshes(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all of ``meshes`` (fewer draw calls)."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.vertices for m in meshes]),
        np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]).astype(np.int32),
        np.concatenate([m.colors for m in meshes]),
        np.concatenate([m.normals for m in meshes]),
    )


def tubes(p0: np.ndarray, p1: np.ndarray, radius: float, color, sides: int = 6) -> Mesh:
    """Open prisms of ``radius`` around the segments ``p0[i] -> p1[i]`` ((S, 3) each).

    Lines drawn by OpenGL are one pixel wide on most software renderers, so paths and frusta
    are drawn as thin tubes instead.
    """
    p0 = np.asarray(p0, np.float64).reshape(-1, 3)
    p1 = np.asarray(p1, np.float64).reshape(-1, 3)
    keep = np.linalg.norm(p1 - p0, axis=1) > 1e-9  # a still camera or person: no direction
    p0, p1 = p0[keep], p1[keep]
    d = p1 - p0
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    helper = np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    a = np.cross(d, helper)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = np.cross(d, a)
    theta = 2 * np.pi * np.arange(sides) / sides
    ring = np.cos(theta)[None, :, None] * a[:, None] + np.sin(theta)[None, :, None] * b[:, None]
    verts = np.concatenate([p0[:, None] + radius * ring, p1[:, None] + radius * ring], axis=1)
    normals = np.concatenate([ring, ring], axis=1)  # (S, 2 sides, 3)
    k = np.arange(sides)
    k1 = (k + 1) % sides
    quad = np.concatenate(
        [np.stack([k, k1, sides + k1], 1), np.stack([k, sides + k1, sides + k], 1)]
    )
    faces = quad[None] + (2 * sides * np.arange(len(p0)))[:, None, None]
    S = len(p0)
    return Mesh(
        verts.reshape(-1, 3).astype(np.float32),
        faces.reshape(-1, 3).astype(np.int32),
        np.broadcast_to(np.asarray(color, np.float32), (S * 2 * sides, 3)).copy(),
        normals.reshape(-1, 3).astype(np.float32),
    )


def checkerboard(center_xz: np.ndarray, half_size: float, tile: float) -> Mesh:
    """A checkerboard floor at y = 0 around ``center_xz`` (2,), ``2 half_size`` metres wide."""
    n = max(1, int(np.ceil(2 * half_size / tile)))
    start = np.asarray(center_xz, np.float64) - n * tile / 2
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    i, j = i.ravel(), j.ravel()
    corners = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], np.float64)  # (x, z) steps
    xz = start + tile * (np.stack([i, j], 1)[:, None] + corners[None])  # (n^2, 4, 2)
    verts = np.stack([xz[..., 0], np.zeros_like(xz[..., 0]), xz[..., 1]], -1).reshape(-1, 3)
    # (0,0) -> (0,1) -> (1,1) walks x-z counter-clockwise seen from +y (x right, z towards you).
    faces = np.array([[0, 1, 2], [0, 2, 3]])[None] + 4 * np.arange(len(i))[:, None, None]
    colors = np.repeat(FLOOR_COLORS[(i + j) % 2], 4, axis=0)
    normals = np.broadcast_to([0.0, 1.0, 0.0], verts.shape)
    return Mesh(
        verts.astype(np.float32),
        faces.reshape(-1, 3).astype(np.int32),
        colors.astype(np.float32),
        np.asarray(normals, np.float32).copy(),
    )


def frustum_segments(
    R_c2w: np.ndarray, centre: np.ndarray, intrins: np.ndarray, size: tuple[int, int], depth: float
) -> tuple[np.ndarray, np.ndarray]:
    """The 8 edges of a camera's viewing pyramid, cut at ``depth`` metres.

    Args:
        R_c2w: (3, 3) camera-to-world rotation (OpenCV camera axes).
        centre: (3,) camera centre in the world.
        intrins: (4,) ``[fx, fy, cx, cy]``; size: ``(height, width)`` in pixels.

    Returns:
        ``(p0, p1)``, (8, 3) each: apex to the 4 image corners, then the 4 sides of the image.
    """
    fx, fy, cx, cy = intrins
    H, W = size
    uv = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float64)
    rays = np.stack([(uv[:, 0] - cx) / fx, (uv[:, 1] - cy) / fy, np.ones(4)], 1)
    corners = centre + depth * rays @ R_c2w.T  # (4, 3)
    p0 = np.concatenate([np.repeat(centre[None], 4, 0), corners])
    p1 = np.concatenate([corners, np.roll(corners, -1, axis=0)])
    return p0, p1


def ground_frame(
    floor_plane: np.ndarray | None,
    world_transform: np.ndarray | None,
    R_c2w: np.ndarray,
    centres: np.ndarray,
    joints: np.ndarray,
) -> np.ndarray:
    """(4, 4) rigid transform from the result's world frame to the ground frame.

    Args:
        floor_plane: (4,) ``[n, d]`` with ``n . x_slam = d`` (SLAM world), NaN or None if none.
        world_transform: (4, 4) SLAM world -> result world (identity if None).
        R_c2w: (T, 3, 3) camera-to-world rotations; centres: (T, 3) camera centres.
        joints: (..., 3) body joints in the world, for the floor height when there is no floor.
    """
    M = np.eye(4) if world_transform is None else np.asarray(world_transform, np.float64)
    plane = None if floor_plane is None else np.asarray(floor_plane, np.float64)
    if plane is not None and np.all(np.isfinite(plane)) and np.linalg.norm(plane[:3]) > 0:
        # n . R^T (x - t) = d  <=>  (R n) . x = d + (R n) . t
        up = M[:3, :3] @ plane[:3]
        scale = np.linalg.norm(up)
        up, height = up / scale, (plane[3] + up @ M[:3, 3]) / scale
    else:
        up = -R_c2w[:, :, 1].mean(0)  # OpenCV y points down
        up /= np.linalg.norm(up)
        joints = joints.reshape(-1, 3)
        # Joints sit about 5 cm above the soles; with nobody, assume a camera at eye height.
        height = float(np.min(joints @ up)) - 0.05 if len(joints) else centres[0] @ up - 1.6
        logger.info("no floor in the result: floor drawn under the lowest joints")
    forward = R_c2w[0][:, 2] - (R_c2w[0][:, 2] @ up) * up
    if np.linalg.norm(forward) < 1e-6:  # first camera looks straight down
        forward = -R_c2w[0][:, 1] - (-R_c2w[0][:, 1] @ up) * up
    z = forward / np.linalg.norm(forward)
    x = np.cross(up, z)
    origin = centres[0] - (centres[0] @ up - height) * up
    G = np.eye(4)
    G[:3, :3] = np.stack([x, up, z])
    G[:3, 3] = -G[:3, :3] @ origin
    return G


def apply(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``T`` (4, 4) applied to (..., 3) points."""
    return points @ T[:3, :3].T + T[:3, 3]


def view_pose(
    points: np.ndarray,
    view: str,
    yfov: float,
    aspect: float,
    margin: float = 1.12,
) -> np.ndarray:
    """(4, 4) OpenGL camera-to-ground pose of a fixed camera that sees all ``points``.

    Args:
        points: (N, 3) ground-frame points to keep in view (joints, camera centres).
        view: ``"above"`` (looking down at 60 degrees, from behind the first camera) or
            ``"side"`` (10 degrees above the floor, from the first camera's right, looking left).
        yfov: vertical field of view, radians; aspect: width / height.
    """
    elevation = {"above": np.radians(60.0), "side": np.radians(10.0)}[view]
    up = np.array([0.0, 1.0, 0.0])
    # The first camera faces +z in the ground frame; +x is its left.
    h = np.array([0.0, 0.0, 1.0]) if view == "above" else np.array([1.0, 0.0, 0.0])
    f = np.cos(elevation) * h - np.sin(elevation) * up  # viewing direction
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    rel = points - centre
    tx, ty = np.tan(yfov / 2) * aspect / margin, np.tan(yfov / 2) / margin
    # A point at (a, b) across the view and e along it fits when |a| <= tx (d + e), same for b.
    need = np.maximum(np.abs(rel @ x) / tx, np.abs(rel @ y) / ty) - rel @ f
    distance = max(float(need.max()), 1.0)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, -f], axis=1)
    pose[:3, 3] = centre - distance * f
    return pose
