"""Synthetic videos with a known camera, for tests and ``bench/camera_accuracy.py``.

A small numpy ray caster draws a walled courtyard (ground, four walls, boxes at several depths),
every face a textured rectangle, and optionally a textured box that walks through the scene (a
stand-in for a person) with its per-frame mask. Camera trajectories are camera-to-world, OpenCV
axes (x right, y down, z forward); the world has y down too and the ground at ``y = 1.5``, so a
camera at the origin stands 1.5 m above it, looking along +z.

Kinds of camera motion (``make_trajectory``): ``static``, ``pan`` (pure rotation), ``tracking``
(sideways dolly that turns to follow), ``forward`` (walking behind someone) and ``handheld`` (a
slow drift with a few centimetres and degrees of shake at 1-3 Hz).
"""

import functools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

KINDS = ("static", "pan", "tracking", "forward", "handheld")
MOVER_ID = 1
"""Object id of the walking box in ``render_frame``'s id image (scenery is 0, background -1)."""


@dataclass
class Rect:
    """A textured rectangle ``origin + a * axis_u + b * axis_v``, ``a, b`` in [0, 1].

    Attributes:
        origin: (3,) corner, metres.
        axis_u: (3,) first edge (length = width in metres).
        axis_v: (3,) second edge.
        texture: (h, w) float32 grey levels in [0, 1]; u runs along the columns.
        object_id: id written to the id image (``MOVER_ID`` for the walking box).
    """

    origin: np.ndarray
    axis_u: np.ndarray
    axis_v: np.ndarray
    texture: np.ndarray
    object_id: int = 0


@dataclass
class SyntheticVideo:
    """Frames of a synthetic scene seen by a known camera.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        masks: (T, H, W) bool, True on the walking box (all False without one).
        R_c2w: (T, 3, 3) true camera-to-world rotations, first frame identity.
        t_c2w: (T, 3) true camera centres in metres, first frame at the origin.
        intrins: (4,) ``[fx, fy, cx, cy]`` in pixels.
        fps: frames per second.
        kind: the camera motion (one of ``KINDS``).
    """

    frames: np.ndarray
    masks: np.ndarray
    R_c2w: np.ndarray
    t_c2w: np.ndarray
    intrins: np.ndarray
    fps: float
    kind: str
    info: dict = field(default_factory=dict)


def noise_texture(rng: np.random.Generator, size: tuple[int, int], cells: float) -> np.ndarray:
    """Value noise with several octaves and scattered dark and light blobs: corners everywhere.

    Args:
        size: ``(h, w)`` texels.
        cells: texels per coarsest noise cell.

    Returns:
        (h, w) float32 in [0, 1].
    """
    h, w = size
    tex = np.zeros((h, w), np.float32)
    amp, step = 1.0, cells
    while step >= 2:
        grid = rng.random((int(h / step) + 2, int(w / step) + 2)).astype(np.float32)
        tex += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        amp, step = amp * 0.6, step / 2
    for _ in range(int(h * w / (cells * cells) * 2)):
        y, x = rng.integers(0, h), rng.integers(0, w)
        r = int(rng.integers(1, max(2, int(cells / 3))))
        cv2.circle(tex, (int(x), int(y)), r, float(rng.choice([-1.0, 3.0])), -1)
    tex = cv2.GaussianBlur(tex, (0, 0), 1.0)
    lo, hi = np.percentile(tex, [2, 98])
    return np.clip((tex - lo) / (hi - lo), 0, 1).astype(np.float32)


def _bilinear(texture: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Texture values at (N,) coordinates ``a`` (along columns), ``b`` (rows) in [0, 1]."""
    th, tw = texture.shape
    x, y = a * (tw - 1), b * (th - 1)
    x0 = np.clip(np.floor(x).astype(int), 0, tw - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, th - 2)
    fx, fy = x - x0, y - y0
    top = texture[y0, x0] * (1 - fx) + texture[y0, x0 + 1] * fx
    bottom = texture[y0 + 1, x0] * (1 - fx) + texture[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _box(rng, centre, size, texels_per_m: float, object_id: int = 0) -> list[Rect]:
    """The four sides and the top of an axis-aligned box standing on its lower face."""
    c, (sx, sy, sz) = np.asarray(centre, float), size
    lo = c - np.array([sx, sy, sz]) / 2
    ex, ey, ez = np.array([sx, 0, 0]), np.array([0, sy, 0]), np.array([0, 0, sz])
    faces = [(lo, ex, ey), (lo + ez, ex, ey), (lo, ez, ey), (lo + ex, ez, ey), (lo, ex, ez)]
    rects = []
    for origin, u, v in faces:
        shape = (int(np.linalg.norm(v) * texels_per_m), int(np.linalg.norm(u) * texels_per_m))
        tex = noise_texture(rng, shape, 12)
        rects.append(Rect(origin, u.astype(float), v.astype(float), tex, object_id))
    return rects


def courtyard(seed: int = 0, texels_per_m: float = 60.0) -> list[Rect]:
    """The static scene: 24 x 24 m ground, 5 m walls, six boxes between 3 and 10 m away."""
    rng = np.random.default_rng(seed)
    ground_y, half, height = 1.5, 12.0, 5.0
    rects = []
    ground = noise_texture(rng, (int(24 * texels_per_m / 2),) * 2, 10)
    rects.append(Rect(np.array([-half, ground_y, -half]), np.array([2 * half, 0, 0]),
                      np.array([0, 0, 2 * half]), ground))  # fmt: skip
    top = ground_y - height
    wall_shape = (int(height * texels_per_m / 2), int(2 * half * texels_per_m / 2))
    for origin, u in (
        ((-half, top, half), (2 * half, 0, 0)),
        ((-half, top, -half), (2 * half, 0, 0)),
        ((-half, top, -half), (0, 0, 2 * half)),
        ((half, top, -half), (0, 0, 2 * half)),
    ):
        tex = noise_texture(rng, wall_shape, 8)
        rects.append(Rect(np.array(origin, float), np.array(u, float),
                          np.array([0, height, 0.0]), tex))  # fmt: skip
    for x, z, sx, sy, sz in (
        (-2.5, 4.0, 1.0, 1.2, 1.0),
        (1.8, 5.5, 1.5, 2.0, 1.0),
        (-4.0, 8.0, 2.0, 3.0, 1.5),
        (3.5, 9.5, 2.0, 1.5, 2.0),
        (0.0, 10.5, 3.0, 2.5, 1.0),
        (-1.0, 3.0, 0.6, 0.6, 0.6),
    ):
        rects += _box(rng, (x, ground_y - sy / 2, z), (sx, sy, sz), texels_per_m)
    return rects


def mover_rects(t: float, seed: int = 1) -> list[Rect]:
    """A 0.5 x 1.7 x 0.3 m textured box walking to and fro at 1 m/s, 4 m away, x in [-1.5, 1.5]."""
    phase = (t / 3.0) % 2.0
    shift = np.array([-1.5 + 3.0 * min(phase, 2.0 - phase), 0, 0])
    return [replace(r, origin=r.origin + shift) for r in _mover_at_origin(seed)]


@functools.cache
def _mover_at_origin(seed: int) -> tuple[Rect, ...]:
    return tuple(_box(np.random.default_rng(seed), (0, 1.5 - 0.85, 4.0), (0.5, 1.7, 0.3), 80.0,
                      MOVER_ID))  # fmt: skip


def render_frame(
    rects: list[Rect],
    intrins: np.ndarray,
    R_c2w: np.ndarray,
    t_c2w: np.ndarray,
    size: tuple[int, int],
    k1: float = 0.0,
    with_depth: bool = False,
) -> tuple[np.ndarray, ...]:
    """Ray-cast one frame.

    Args:
        intrins: (4,) ``[fx, fy, cx, cy]``.
        R_c2w: (3, 3); t_c2w: (3,) camera centre.
        size: ``(H, W)``.
        k1: radial lens distortion, ``x_d = x (1 + k1 |x|^2)`` in normalized coordinates
            (negative: barrel), applied approximately (first order).
        with_depth: also return the depth image.

    Returns:
        (H, W, 3) uint8 RGB and (H, W) int object ids (-1 where no rectangle is hit); with
        ``with_depth``, also (H, W) float32 depth along the viewing axis, metres (inf where
        no rectangle is hit): a ray's camera-frame z is 1, so its hit distance is the depth.
    """
    H, W = size
    fx, fy, cx, cy = intrins
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    x, y = (u - cx) / fx, (v - cy) / fy
    undistort = 1 - k1 * (x * x + y * y)
    rays = np.stack([x * undistort, y * undistort, np.ones_like(u)], -1).reshape(-1, 3)
    rays = rays @ R_c2w.T.astype(np.float32)
    origin = np.stack([r.origin for r in rects]) - t_c2w  # (R, 3) corners seen from the camera
    axis_u = np.stack([r.axis_u for r in rects])
    axis_v = np.stack([r.axis_v for r in rects])
    normal = np.cross(axis_u, axis_v)
    # ray s * d meets plane r where s = (n . o) / (n . d); its coordinates along u and v are
    # (s d - o) . u / |u|^2, computed for all rays and rectangles at once: (N, R) arrays
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.einsum("rk,rk->r", normal, origin).astype(np.float32) / (
            rays @ normal.T.astype(np.float32)
        )
        a = (s * (rays @ axis_u.T.astype(np.float32)) - np.einsum("rk,rk->r", axis_u, origin)) / (
            axis_u * axis_u
        ).sum(1)
        b = (s * (rays @ axis_v.T.astype(np.float32)) - np.einsum("rk,rk->r", axis_v, origin)) / (
            axis_v * axis_v
        ).sum(1)
        valid = (s > 1e-6) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
    s = np.where(valid, s, np.inf)
    nearest = np.argmin(s, axis=1)
    hit = np.isfinite(s[np.arange(len(s)), nearest])
    grey = np.full(H * W, 0.85, np.float32)  # sky
    ids = np.full(H * W, -1)
    for r, rect in enumerate(rects):
        index = np.flatnonzero(hit & (nearest == r))
        if len(index):
            grey[index] = _bilinear(rect.texture, a[index, r], b[index, r])
            ids[index] = rect.object_id
    image = np.clip(grey * 255, 0, 255).astype(np.uint8).reshape(H, W)
    tint = np.array([1.0, 0.95, 0.85])  # not grey, so that colour conversion is exercised
    rgb = np.clip(image[..., None] * tint, 0, 255).astype(np.uint8)
    if with_depth:
        depth = np.where(hit, s[np.arange(len(s)), nearest], np.inf).astype(np.float32)
        return rgb, ids.reshape(H, W), depth.reshape(H, W)
    return rgb, ids.reshape(H, W)


def _smooth_noise(rng, num: int, fps: float, hz: float) -> np.ndarray:
    """(num, 3) smooth zero-mean noise of unit standard deviation with frequencies up to ``hz``."""
    t = np.arange(num) / fps
    out = np.zeros((num, 3))
    for f in rng.uniform(0.5, hz, size=4):
        out += np.sin(2 * np.pi * f * t[:, None] + rng.uniform(0, 2 * np.pi, 3))
    return out / out.std(0).clip(1e-9)


def make_trajectory(
    kind: str, num_frames: int, fps: float = 30.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A camera-to-world trajectory of one kind (see the module docstring).

    Returns:
        (T, 3, 3) ``R_c2w`` with the first frame identity and (T, 3) camera centres in metres
        with the first at the origin.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown trajectory kind {kind!r}; expected one of {KINDS}")
    rng = np.random.default_rng(seed)
    s = np.linspace(0, 1, num_frames)
    ease = 0.5 - 0.5 * np.cos(np.pi * s)
    euler = np.zeros((num_frames, 3))  # yaw (about y), pitch (about x), roll (about z), degrees
    centre = np.zeros((num_frames, 3))
    if kind == "pan":
        euler[:, 0] = 40.0 * ease
        euler[:, 1] = -4.0 * ease
    elif kind == "tracking":
        centre[:, 0] = 2.5 * ease
        centre[:, 2] = 0.4 * ease
        euler[:, 0] = 12.0 * ease
    elif kind == "forward":
        centre[:, 2] = 2.5 * s
        centre[:, 0] = 0.05 * np.sin(2 * np.pi * 1.8 * s * num_frames / fps)
        centre[:, 1] = 0.03 * np.sin(2 * np.pi * 3.6 * s * num_frames / fps)
        euler[:, 0] = -6.0 * ease
    elif kind == "handheld":
        centre = 0.03 * _smooth_noise(rng, num_frames, fps, 3.0)
        centre[:, 0] += 0.6 * ease
        euler = 1.5 * _smooth_noise(rng, num_frames, fps, 3.0)
        euler[:, 0] += 8.0 * ease
    rot = Rotation.from_euler("YXZ", euler, degrees=True).as_matrix()
    rot = np.einsum("ij,tjk->tik", rot[0].T, rot)
    return rot, centre - centre[0]


def make_video(
    kind: str,
    num_frames: int = 45,
    size: tuple[int, int] = (240, 320),
    fps: float = 30.0,
    mover: bool = False,
    seed: int = 0,
    noise: float = 2.0,
    k1: float = 0.0,
) -> SyntheticVideo:
    """Render a synthetic video of the courtyard seen along a trajectory of ``kind``.

    Args:
        size: ``(H, W)``; the focal length is SLAHMR's default ``(H + W) / 2``.
        mover: add the walking box (the masks mark it).
        noise: standard deviation of Gaussian pixel noise, grey levels.
        k1: radial lens distortion (``render_frame``), 0 for a pinhole camera.
    """
    H, W = size
    focal = 0.5 * (H + W)
    intrins = np.array([focal, focal, W / 2, H / 2])
    scene = courtyard(seed)
    rng = np.random.default_rng(seed + 1)
    R_c2w, t_c2w = make_trajectory(kind, num_frames, fps, seed)
    frames = np.zeros((num_frames, H, W, 3), np.uint8)
    masks = np.zeros((num_frames, H, W), bool)
    for i in range(num_frames):
        rects = scene + (mover_rects(i / fps) if mover else [])
        frame, ids = render_frame(rects, intrins, R_c2w[i], t_c2w[i], size, k1)
        if noise > 0:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        frames[i] = frame
        masks[i] = ids == MOVER_ID
    return SyntheticVideo(frames, masks, R_c2w, t_c2w, intrins, fps, kind)
