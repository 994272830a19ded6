"""``bench make --video``: motion capture rendered as videos with ground truth, for ``slahmr-opt
run`` end to end (``video_bench_run`` scores them).

Each sequence folder holds ``video.mp4`` (the body, ``video_render``, filmed in the synthetic
courtyard by one of ``VIDEO_CAMERA_KINDS``), ``gt.npz`` and ``meta.json`` (which also says
from where the camera films the body: ``view_deg_median``, 0 the front, 180 the back);
``index.json`` in the benchmark folder lists them. ``gt.npz`` has ``bench_make``'s keys (so
``evaluate.evaluate_result`` scores a result unchanged) except ``alpha``, which depends on the
scale of the front end's camera and is measured by the runner, plus:

============  ==============  =================================================
key           shape           meaning
============  ==============  =================================================
intrins       (4,)            true ``[fx, fy, cx, cy]``, pixels
image_size    (2,)            ``(H, W)``, pixels
stature       (P,)            true standing height (``BodyModel.stature``), metres
============  ==============  =================================================

Everything is a function of the seed (``bench_make.sequence_rng``): motions, camera paths,
textures and pixel noise. With ``focal_off``, sequence ``j`` (of motion ``g``) is filmed with a
focal length that far from SLAHMR's default ``(H + W) / 2`` when ``j + g`` is odd (``run``
measures it): about half the sequences, and with two camera kinds each kind gets both.
"""

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.outputs import check_claimable, claimed_output
from slahmr_opt.files.video import Mp4Writer
from slahmr_opt.mocap.fit import BodyFit
from slahmr_opt.synth import observe as synth
from slahmr_opt.synth.benchmark import (
    CAMERA_KINDS,
    FEET,
    _camera_kinds,
    _select,
    check_selection,
    fit_motions,
    list_motions,
    sequence_rng,
    write_index,
)
from slahmr_opt.synth.video_render import BodyVideoRenderer, ScenePlacement, body_part_colors

logger = logging.getLogger(__name__)

VIDEO_FILE = "video.mp4"
TRACK_ID = "001"
"""The ground truth's one track id (the runner matches the front end's one track to it)."""
VIDEO_CAMERA_KINDS = (*CAMERA_KINDS, "behind", "side")
"""``bench_make``'s kinds plus tracking cameras that film the body from behind or from its right
side (the heading set from the body's mean facing direction instead of drawn at random)."""
FIXED_VIEWS = {"behind": np.pi, "side": -np.pi / 2}
"""Camera heading relative to the body's facing (the turn about the vertical, radians)."""
DEFAULT_SIZE = (270, 480)
"""``(H, W)`` of the videos unless told otherwise."""
MIN_PERSON_PX = 80.0
"""A static camera stands back until the whole path is in view, but no farther than where the
person is this many pixels tall."""


def posed(body: BodyModel, fit: BodyFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (T, V, 3), joints (T, 24, 3) and foot points (T, 4, 3) of a fit, float64."""
    T = len(fit.trans)

    def f64(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))

    with torch.no_grad():
        out = body.to(torch.float64)(
            f64(fit.betas)[None].expand(T, -1),
            f64(fit.root_orient),
            f64(fit.pose_body).reshape(T, 21, 3),
            f64(fit.trans),
            return_vertices=True,
        )
    return (out.vertices.numpy(), out.joints.numpy(),
            out.keypoint_vertices[..., FEET, :].numpy())  # fmt: skip


def view_angles_deg(root_orient: np.ndarray, pelvis: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(T,) angle over the floor between where the body faces (its +z, as SMPL's) and where the
    camera stands, seen from the pelvis, degrees: 0 films the front, 90 a side, 180 the back."""
    facing = Rotation.from_rotvec(root_orient).apply([0.0, 0.0, 1.0])[:, [0, 2]]
    to_cam = (centres - pelvis)[:, [0, 2]]
    cos = (facing * to_cam).sum(1) / np.maximum(
        np.linalg.norm(facing, axis=1) * np.linalg.norm(to_cam, axis=1), 1e-9
    )
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def camera_settings(
    kind: str, pelvis: np.ndarray, image_size: tuple[int, int], focal: float
) -> synth.SynthSettings:
    """``synth.camera_path`` settings; a static camera stands back so the path stays in view."""
    s = synth.SynthSettings(camera=kind, image_size=image_size)
    if kind == "static":
        W = image_size[1]
        reach = float(np.linalg.norm(pelvis[:, [0, 2]] - pelvis[:, [0, 2]].mean(0), axis=1).max())
        needed = 1.3 * reach * focal / (0.5 * W)
        s.distance = float(np.clip(needed, s.distance, 1.7 * focal / MIN_PERSON_PX))
    return s


def render_sequence(
    dest: Path,
    body: BodyModel,
    colors: np.ndarray,
    fit: BodyFit,
    kind: str,
    image_size: tuple[int, int],
    focal: float,
    fps: float,
    rng: np.random.Generator,
    texture_seed: int,
    progress: bool = False,
) -> dict:
    """Render one sequence into ``dest`` (``video.mp4``, ``gt.npz``); returns facts for
    ``meta.json`` (camera distance, detected-looking frames, seconds)."""
    verts, joints, feet = posed(body, fit)
    T = len(verts)
    s = camera_settings(kind, joints[:, 0], image_size, focal)
    heading = None
    if kind in FIXED_VIEWS:
        facing = Rotation.from_rotvec(fit.root_orient).apply([0.0, 0.0, 1.0]).mean(0)
        heading = float(np.arctan2(facing[0], facing[2]) + FIXED_VIEWS[kind])
    path_kind = "tracking" if kind in FIXED_VIEWS else kind
    R, t = synth.camera_path(path_kind, joints[:, 0], s, rng, heading=heading)
    centres = -np.einsum("tji,tj->ti", R, t)
    floor_y = float(np.percentile(verts[..., 1].min(-1), 2))
    placement = ScenePlacement.fit(
        floor_y, np.concatenate([joints[:, 0, [0, 2]], centres[:, [0, 2]]])
    )
    H, W = image_size
    intrins = np.array([focal, focal, W / 2, H / 2])
    dest.mkdir(parents=True, exist_ok=True)
    visible = np.zeros(T, int)
    with (
        BodyVideoRenderer(body.faces.numpy(), colors, image_size, placement, texture_seed) as r,
        Mp4Writer(dest / VIDEO_FILE, image_size, fps) as writer,
    ):
        for i in tqdm(range(T), desc=dest.name, unit="frame", disable=not progress, leave=False):
            frame, mask = r.render(verts[i], R[i], t[i], intrins)
            writer.write(frame)
            visible[i] = int(mask.sum())
        writer.commit()
    with torch.no_grad():
        stature = body.to(torch.float64).stature(torch.from_numpy(fit.betas)[None]).numpy()
    np.savez(
        dest / "gt.npz",
        joints=joints[None].astype(np.float32),
        feet=feet[None].astype(np.float32),
        valid=np.ones((1, T), bool),
        track_ids=np.array([TRACK_ID]),
        trans=np.asarray(fit.trans, np.float64)[None],
        root_orient=np.asarray(fit.root_orient, np.float64)[None],
        pose_body=np.asarray(fit.pose_body, np.float64).reshape(1, T, 63),
        betas=np.asarray(fit.betas, np.float64)[None],
        cam_R=R.astype(np.float32),
        cam_t=t.astype(np.float32),
        intrins=intrins,
        image_size=np.array(image_size),
        stature=stature,
    )
    return {
        "camera_distance_m": s.distance,
        "view_deg_median": float(
            np.median(
                view_angles_deg(np.asarray(fit.root_orient, np.float64), joints[:, 0], centres)
            )
        ),
        "body_pixels_median": float(np.median(visible)),
        "frames_with_body": int((visible > 0).sum()),
        "stature_true": float(stature[0]),
        "floor_y": floor_y,
    }


def make_video_benchmark(
    mocap_paths: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    seed: int = 0,
    cameras: Sequence[str] = ("tracking", "static"),
    max_frames: int = 120,
    max_sequences: int | None = None,
    allow_train: bool = False,
    contains: Sequence[str] = (),
    per_pattern: int | None = None,
    image_size: tuple[int, int] = DEFAULT_SIZE,
    focal_off: float = 0.0,
    one_camera: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Build a rendered-video benchmark: every chosen motion filmed by every camera kind.

    Args:
        mocap_paths, seed, max_frames, max_sequences, allow_train, contains, per_pattern,
            one_camera: as ``bench_make.make_benchmark`` (one person per video).
        cameras: camera kinds (``VIDEO_CAMERA_KINDS``; ``handheld`` is ``orbit``).
        image_size: ``(H, W)`` of the videos, both even.
        focal_off: about half the sequences' true focal length is ``(1 + focal_off)`` times
            the default ``(H + W) / 2`` (see the module docstring); 0: all default.
        progress: progress bars.
        overwrite: replace an existing ``index.json`` (else refused before any work).

    Returns:
        The path of ``index.json``, written last (atomically).

    Raises:
        ConfigError, InputError, OutputError: as ``make_benchmark``.
    """
    if isinstance(mocap_paths, (str, Path)):
        mocap_paths = [mocap_paths]
    H, W = image_size
    if max_frames < 2 or H % 2 or W % 2 or min(H, W) < 64:
        raise ConfigError(f"need --max-frames >= 2 and an even image size of at least 64 pixels, "
                         f"got {max_frames}, {W}x{H}")  # fmt: skip
    if not -0.5 < focal_off < 1.0:
        raise ConfigError(f"--focal-off must be in (-0.5, 1), got {focal_off}")
    check_selection(max_frames=max_frames, max_sequences=max_sequences, per_pattern=per_pattern)
    kinds = list(dict.fromkeys(c if c in FIXED_VIEWS else _camera_kinds([c])[0] for c in cameras))
    out = Path(out_dir)
    check_claimable(out, overwrite, "index.json")
    motions = list_motions(mocap_paths, allow_train)
    motions = _select(motions, contains, per_pattern, np.random.default_rng(seed))
    pick = np.random.default_rng(seed).permutation(len(motions))
    n = len(motions) if max_sequences is None else min(len(motions), max_sequences)
    if n == 0:
        raise InputError(", ".join(map(str, mocap_paths)), "no usable motion")
    chosen = [motions[i] for i in pick[:n]]
    with claimed_output(out, overwrite, "index.json"):
        return _render_all(out, chosen, kinds, seed, max_frames, image_size, focal_off,
                           one_camera, progress)  # fmt: skip


def _render_all(out: Path, chosen: list, kinds: list[str], seed: int, max_frames: int,
                image_size: tuple[int, int], focal_off: float, one_camera: bool,
                progress: bool) -> Path:  # fmt: skip
    """Fit, render and index the chosen motions (``make_video_benchmark``'s work)."""
    H, W = image_size
    n = len(chosen)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    logger.info("fitting the body to %d motions", n)
    fits = fit_motions(body, chosen, max_frames)
    colors = body_part_colors(body)
    jobs = [(g, kind) for g in range(n) for kind in kinds
            if not one_camera or kind == kinds[g % len(kinds)]]  # fmt: skip
    entries = []
    default_focal = 0.5 * (H + W)
    for j, (g, kind) in enumerate(tqdm(jobs, desc="video sequences", unit="seq",
                                       disable=not progress)):  # fmt: skip
        motion = chosen[g]
        name = f"{g:03d}_{kind}_{Path(str(motion.source)).stem}"
        focal = default_focal * (1 + focal_off if (j + g) % 2 == 1 else 1.0)
        facts = render_sequence(
            out / name, body, colors, fits[g], kind, image_size, focal, float(motion.fps),
            sequence_rng(seed, name), texture_seed=int(sequence_rng(seed, name + "/scene")
                                                       .integers(2**31)),
        )  # fmt: skip
        T = len(fits[g].trans)
        meta = {
            "name": name,
            "sources": [str(motion.source)],
            "frames": [0, T],
            "fit_residual_mm": [float(fits[g].residual_mm[:T].mean())],
            "seed": seed,
            "camera": kind,
            "variant": "original",
            "static": kind == "static",
            "people": 1,
            "video": VIDEO_FILE,
            "fps": float(motion.fps),
            "image_size": [H, W],
            "focal_true": focal,
            "focal_default": default_focal,
            **facts,
        }
        (out / name / "meta.json").write_text(json.dumps(meta, indent=2))
        entries.append({k: meta[k] for k in ("name", "camera", "variant", "people", "sources",
                                             "seed", "static", "focal_true")}
                       | {"frames": T})  # fmt: skip
    index = {"seed": seed, "max_frames": max_frames, "cameras": kinds, "people": 1,
             "video": True, "image_size": [H, W], "focal_off": focal_off,
             "sequences": entries}  # fmt: skip
    return write_index(out, index)


__all__ = ["VIDEO_CAMERA_KINDS", "make_video_benchmark", "render_sequence"]
