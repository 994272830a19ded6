"""Render a fitted result to an mp4: the meshes over the input frames, and a world view.

Each output frame is two panels side by side, both ``panel_size`` pixels:

- left: the fitted meshes (one colour per track) drawn with the result's cameras over video
  frame ``frame_offset + t`` (or over a plain background when no frames are given);
- right: the same people in the ground frame (see ``slahmr_opt.render.scene``) with a
  checkerboard floor at y = 0, the whole camera path and the current camera's frustum, seen
  by a fixed camera from above or from the side.
"""

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from slahmr_opt.body import BodyModel
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.video import FrameReader, Mp4Writer
from slahmr_opt.io.bodies import camera_arrays, camera_to_world, intrinsics, mesh_faces, posed
from slahmr_opt.render import scene
from slahmr_opt.render.backend import Camera, Renderer
from slahmr_opt.types import Result

logger = logging.getLogger(__name__)

VIEWS = ("above", "side")
OVERLAY_BACKGROUND = (0.16, 0.17, 0.19)
WORLD_BACKGROUND = (0.97, 0.97, 0.97)
WORLD_YFOV = np.radians(45.0)
POSE_CHUNK = 32  # frames posed at once: bounded memory on long videos


@dataclass
class RenderOptions:
    """How ``render_result`` draws."""

    view: str = "above"
    """World view: ``"above"`` (60 degrees down, behind the first camera) or ``"side"``."""
    width: int = 1920
    """Output width in pixels, both panels (rounded down to a multiple of 4)."""
    frames: slice = field(default_factory=lambda: slice(None))
    """Result frames to draw (``start:stop:step``, step > 0)."""
    alpha: float = 0.85
    """Opacity of the meshes over video frames."""
    labels: bool = True
    """Write the frame number and the view's name on the panels."""
    progress: bool = True
    """Show a tqdm progress bar."""


@dataclass
class RenderReport:
    """What ``render_result`` wrote.

    Attributes:
        path: the mp4; num_frames: frames written; size: ``(height, width)`` of a frame.
        seconds: wall time of the frame loop; fps: frames rendered per second.
    """

    path: Path
    num_frames: int
    size: tuple[int, int]
    seconds: float
    fps: float


def panel_size(image_size: tuple[int, int], width: int) -> tuple[int, int]:
    """``(height, width)`` of one panel for an output ``width`` px wide; both even."""
    H, W = image_size
    if width < 64:
        raise ConfigError(f"--width {width} is too small; use at least 64 pixels")
    pw = (width // 2) // 2 * 2
    ph = max(2, int(round(H * pw / W / 2)) * 2)
    return ph, pw


def select_frames(num_frames: int, frames: slice) -> np.ndarray:
    """Result frame indices of ``frames`` (a slice with a positive step)."""
    if frames.step is not None and frames.step <= 0:
        raise ConfigError(f"--frames step must be positive, got {frames.step}")
    picked = np.arange(num_frames)[frames]
    if len(picked) == 0:
        raise ConfigError(f"--frames {frames} selects none of the result's {num_frames} frames")
    return picked


class _Drawn:
    """What the frame loop draws of a result, as numpy: the people's mesh and track masks, and
    the cameras."""

    def __init__(self, result: Result, body_model: BodyModel):
        self.result, self.body_model = result, body_model
        self.faces = mesh_faces(body_model)
        self.track_mask = result.track_mask.numpy().astype(bool)  # (P, T)
        self.R_w2c, self.t_w2c = camera_arrays(result)  # (T, 3, 3), (T, 3)
        self.intrins = intrinsics(result)  # (T, 4)
        self.image_size = result.cameras.image_size


class _WorldView:
    """Static parts of the world view: ground frame, view camera, floor, camera path, and each
    person's pelvis track on the floor in the person's colour."""

    def __init__(self, drawn: _Drawn, view: str, aspect: float):
        result = drawn.result
        # All frames, not only the rendered ones: a clip of a video keeps the same framing.
        _, joints = posed(result, drawn.body_model, vertices=False)  # (P, T, J, 3)
        R_c2w, centres = camera_to_world(result)
        present = drawn.track_mask
        joints_w = joints[present]  # (n, J, 3)
        plane = None if result.floor is None else result.floor.as_plane().numpy()
        self.G = scene.ground_frame(
            plane, result.world_transform.float().numpy(), R_c2w, centres, joints_w
        )
        self.R_c2w_g = self.G[:3, :3] @ R_c2w  # (T, 3, 3) camera-to-ground
        self.centres_g = scene.apply(self.G, centres)  # (T, 3)
        points = np.concatenate([scene.apply(self.G, joints_w.reshape(-1, 3)), self.centres_g])
        extent = float(np.max(points.max(0) - points.min(0)))
        self.radius = float(np.clip(0.004 * extent, 0.008, 0.03))
        self.frustum_depth = float(np.clip(0.08 * extent, 0.25, 1.0))
        self.pose = scene.view_pose(points, view, WORLD_YFOV, aspect)
        path = self.centres_g
        self.static = [
            self._floor(points, extent),
            scene.tubes(path[:-1], path[1:], self.radius, scene.PATH_COLOR),
            *self._trails(scene.apply(self.G, joints[:, :, 0]), present),
        ]
        up_light = np.eye(4)
        up_light[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # shines straight down
        self.lights = [(self.pose, 1.6), (up_light, 0.8)]
        self._background = None

    def draw(self, renderer: Renderer, meshes: list) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb, depth)`` of ``meshes`` seen by the world-view camera."""
        camera = Camera(yfov=WORLD_YFOV, pose=self.pose)
        return renderer.render(
            meshes, camera, WORLD_BACKGROUND, lights=self.lights, cull_faces=False
        )

    def background(self, renderer: Renderer) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb, depth)`` of the floor and the camera path, drawn once.

        The floor fills the view and shading it is most of a software renderer's time, so
        each frame draws only the people and the frustum and depth-tests them against this.
        """
        if self._background is None:
            self._background = self.draw(renderer, self.static)
        return self._background

    def _trails(self, pelvis: np.ndarray, present: np.ndarray) -> list[scene.Mesh]:
        """Tubes along (P, t, 3) ``pelvis`` dropped to the floor, where ``present`` (P, t)."""
        trails = []
        for p in range(len(pelvis)):
            both = present[p, :-1] & present[p, 1:]
            if both.any():
                on_floor = pelvis[p] * [1.0, 0.0, 1.0] + [0.0, self.radius, 0.0]
                color = 0.8 * scene.track_color(p)
                trails.append(
                    scene.tubes(on_floor[:-1][both], on_floor[1:][both], self.radius, color)
                )
        return trails

    @staticmethod
    def _floor(points: np.ndarray, extent: float) -> scene.Mesh:
        lo, hi = points[:, [0, 2]].min(0), points[:, [0, 2]].max(0)
        half = 0.5 * float(np.max(hi - lo)) + max(4.0, extent)
        # At most 40 tiles a side; a scene kilometres wide (a person placed far off) gets
        # tiles as large as it needs.
        tile = next((t for t in (0.5, 1.0, 2.0, 5.0, 10.0, 50.0) if 2 * half / t <= 40),
                    2 * half / 40)  # fmt: skip
        return scene.checkerboard((lo + hi) / 2, half, tile)

    def frustum(self, t: int, intrins: np.ndarray, image_size: tuple[int, int]) -> scene.Mesh:
        p0, p1 = scene.frustum_segments(
            self.R_c2w_g[t], self.centres_g[t], intrins, image_size, self.frustum_depth
        )
        return scene.tubes(p0, p1, 1.5 * self.radius, scene.FRUSTUM_COLOR)


def _check_intrinsics(intrins: np.ndarray, source: str | Path | None) -> None:
    if not np.all(np.isfinite(intrins)) or np.any(intrins[:, :2] <= 0):
        raise InputError(source, "intrins must be finite with positive focal lengths")


def _frame_panel(
    reader: FrameReader | None, video_index: int, size: tuple[int, int], image_size
) -> np.ndarray | None:
    """Video frame ``video_index`` resized to the panel ``size``, or None without frames."""
    if reader is None:
        return None
    frame = reader.read(video_index)
    H, W = frame.shape[:2]
    if abs(W / H - image_size[1] / image_size[0]) > 0.01 * image_size[1] / image_size[0]:
        raise InputError(
            reader.path, f"frames are {W}x{H}, the result was fitted on "
            f"{image_size[1]}x{image_size[0]} images (another aspect ratio)"
        )  # fmt: skip
    if (H, W) == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize((size[1], size[0]), Image.BILINEAR))


@functools.lru_cache(maxsize=4)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: its small bitmap font
        return ImageFont.load_default()


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    img = Image.fromarray(panel)
    size = max(10, panel.shape[0] // 32)
    font = _font(size)
    ImageDraw.Draw(img).text(
        (size // 2, size // 3), text, fill=(255, 255, 255), font=font,
        stroke_width=max(1, size // 8), stroke_fill=(0, 0, 0),
    )  # fmt: skip
    return np.asarray(img)


def _overlay_panel(
    renderer: Renderer, drawn: _Drawn, verts: np.ndarray, t: int, scale: float,
    frame: np.ndarray | None, alpha: float,
) -> np.ndarray:  # fmt: skip
    """Meshes of the people present at ``t`` drawn with camera ``t`` over ``frame``."""
    R, tr = drawn.R_w2c[t], drawn.t_w2c[t]
    meshes = [
        scene.make_mesh((verts[p] @ R.T + tr) @ scene.CV_TO_GL, drawn.faces, scene.track_color(p))
        for p in np.flatnonzero(drawn.track_mask[:, t])
    ]
    # OpenCV puts pixel centres at integers, OpenGL at half-integers; scaling the image by
    # ``scale`` maps a pixel edge u + 1/2 to scale (u + 1/2).
    fx, fy, cx, cy = drawn.intrins[t]
    camera = Camera(intrins=scale * np.array([fx, fy, cx + 0.5, cy + 0.5]))
    rgb, depth = renderer.render(meshes, camera, background=OVERLAY_BACKGROUND)
    if frame is None:
        return rgb
    mask = depth > 0
    out = frame.copy()
    out[mask] = ((1 - alpha) * frame[mask] + alpha * rgb[mask]).astype(np.uint8)
    return out


def _world_panel(renderer: Renderer, drawn: _Drawn, world: _WorldView, verts, t: int) -> np.ndarray:
    """People and camera ``t`` drawn over the pre-rendered floor and path, depth-tested."""
    meshes = [
        scene.make_mesh(scene.apply(world.G, verts[p]), drawn.faces, scene.track_color(p))
        for p in np.flatnonzero(drawn.track_mask[:, t])
    ]
    meshes.append(world.frustum(t, drawn.intrins[t], drawn.image_size))
    rgb, depth = world.draw(renderer, meshes)
    static_rgb, static_depth = world.background(renderer)
    front = (depth > 0) & ((static_depth == 0) | (depth <= static_depth))
    out = static_rgb.copy()
    out[front] = rgb[front]
    return out


def render_result(
    result: Result,
    body_model: BodyModel,
    out: str | Path,
    reader: FrameReader | None = None,
    options: RenderOptions | None = None,
    source: str | Path | None = None,
) -> RenderReport:
    """Write the two-panel mp4 of ``result`` to ``out`` (see the module docstring).

    Args:
        result: the fitted result (in memory, or ``slahmr_opt.io.results.read_result``).
        body_model: the body model it was fitted with (``io.bodies.result_body_model``).
        out: output ``.mp4``; written to a temporary file and renamed when complete.
        reader: the input frames (video frame ``frame_offset + t`` under result frame ``t``).
        source: the results file, named in error messages.

    Raises:
        InputError: unreadable or too short frames, bad intrinsics.
        ConfigError: bad options.
        RendererUnavailableError: pyrender or OSMesa missing.
    """
    opts = options or RenderOptions()
    if opts.view not in VIEWS:
        raise ConfigError(f"--view {opts.view!r}; expected one of {list(VIEWS)}")
    drawn = _Drawn(result, body_model)
    _check_intrinsics(drawn.intrins, source)
    frames = select_frames(result.num_frames, opts.frames)
    ph, pw = panel_size(drawn.image_size, opts.width)
    scale = pw / drawn.image_size[1]
    world = _WorldView(drawn, opts.view, pw / ph)
    step = 1 if opts.frames.step is None else opts.frames.step
    start = time.perf_counter()
    with (
        Renderer(pw, ph) as renderer,
        Mp4Writer(out, (ph, 2 * pw), result.fps / step) as writer,
        tqdm(total=len(frames), desc="render", unit="frame", disable=not opts.progress) as bar,
    ):
        for c in range(0, len(frames), POSE_CHUNK):
            chunk = frames[c : c + POSE_CHUNK]
            verts, _ = posed(result, body_model, chunk)  # (P, c, V, 3)
            for i, t in enumerate(chunk):
                video_index = result.frame_offset + int(t)
                frame = _frame_panel(reader, video_index, (ph, pw), drawn.image_size)
                left = _overlay_panel(renderer, drawn, verts[:, i], t, scale, frame, opts.alpha)
                right = _world_panel(renderer, drawn, world, verts[:, i], t)
                if opts.labels:
                    left = _label(left, f"frame {t} (video {video_index})")
                    right = _label(right, f"world, {opts.view}")
                writer.write(np.concatenate([left, right], axis=1))
                bar.update()
        path = writer.commit()
    seconds = time.perf_counter() - start
    return RenderReport(path, len(frames), (ph, 2 * pw), seconds, len(frames) / seconds)
