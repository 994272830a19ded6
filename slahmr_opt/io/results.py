"""``results.npz`` (SLAHMR's key names and shapes) and the files written next to it.

Keys (P people, T frames, B betas). World frame: the gravity-aligned frame (y up, the floor at
y = 0, the first camera above the origin looking along +z), or the SLAM world (metric, OpenCV
axes) when ``floor.align_output`` is off or no floor could be estimated; ``world_transform``
maps the SLAM world into it:

===============  =============  ==========================================================
key              shape          meaning
===============  =============  ==========================================================
trans            (P, T, 3)      SMPL ``transl`` in the world, metres
root_orient      (P, T, 3)      root orientation in the world, axis-angle
pose_body        (P, T, 63)     21 body joint rotations, axis-angle
betas            (P, B)         shape coefficients of the body model used
cam_R            (P, T, 3, 3)   world-to-camera rotation (repeated per person, as SLAHMR)
cam_t            (P, T, 3)      world-to-camera translation, metric (alpha applied)
intrins          (T, 4)         ``[fx, fy, cx, cy]`` per frame (SLAHMR: one (4,) row)
world_scale      (1, 1)         alpha: metres per SLAM translation unit; NaN for a static camera
                                or one that does not translate measurably (a pan)
track_mask       (P, T)         frames where the person exists
vis_mask         (P, T)         frames where the person was detected
joints           (P, T, 24, 3)  world joints of the fitted bodies, metres
track_ids        (P,)           track names
fps, image_size  (), (2,)       frame rate; ``[height, width]``
is_static        ()             static camera
frame_offset     ()             video frame index of frame 0 (inputs are cropped to the tracks)
world_transform  (4, 4)         SLAM world (metric) -> result world: ``x = R x_slam + t``
stature          (P,)           standing height of each fitted body, metres
floor_plane      (4,)           floor ``[nx, ny, nz, d]``, ``n . x_slam = d``, unit normal up,
                                in the SLAM world (metric); NaN if none was estimated
body_model_*     ()             the body model fitted with: ``_type`` (smpl, smplh, smplx),
                                ``_gender``, ``_num_betas``, ``_file`` (name), ``_sha256`` (of
                                the file), ``_builtin`` (True: the built-in model, whose betas
                                are not SMPL's)
===============  =============  ==========================================================

Next to it: ``config.yaml`` (resolved), ``versions.json``, ``history.csv``, ``loss.png``,
``stages.json``. Files are written to a temporary name and renamed, so a killed job never
leaves a results file that looks complete. ``read_result`` reads all of it back into a
``Result``; ``read_result_arrays`` gives the raw arrays.
"""

import csv
import json
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from slahmr_opt import __version__
from slahmr_opt.body.keypoints import FOOT_JOINTS, SMPL_JOINT_NAMES
from slahmr_opt.errors import InputError, OutputError
from slahmr_opt.files.checks import (
    check_finite,
    check_fps,
    check_shape,
    load_json,
    load_npz,
    write_atomic,
)
from slahmr_opt.files.outputs import check_writable
from slahmr_opt.history import LossHistory
from slahmr_opt.types import BodyParams, Cameras, Floor, Result, StageSummary

RESULT_KEYS = (
    "trans",
    "root_orient",
    "pose_body",
    "betas",
    "cam_R",
    "cam_t",
    "intrins",
    "world_scale",
    "track_mask",
    "vis_mask",
    "joints",
    "track_ids",
    "fps",
    "image_size",
    "is_static",
    "frame_offset",
    "world_transform",
    "floor_plane",
)


def cpu_name() -> str:
    """The CPU's model name (for benchmark records)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The ``body_model_<key>`` scalars of ``results.npz`` (``body.body_model_record``).
BODY_RECORD_KEYS = ("type", "gender", "num_betas", "file", "sha256", "builtin")


def versions() -> dict[str, str]:
    """Versions of the libraries that shape the result (``"absent"`` for an optional one that
    is not installed: theseus-ai serves only ``solver.kind=theseus``)."""
    out = {"slahmr_opt": __version__, "torch": torch.__version__}
    for name, dist in (("theseus", "theseus-ai"), ("smplx", "smplx"), ("roma", "roma")):
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return {**out, "numpy": np.__version__, "python": platform.python_version()}


def metric_cameras(result: Result) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera ``(R (T, 3, 3), t (T, 3))`` of a result, metric (alpha applied), float32
    as ``results.npz`` stores them (so exports from memory and from the file agree)."""
    cams = result.cameras
    return cams.R_w2c.float(), (cams.alpha * cams.t_w2c).float()


def result_arrays(result: Result) -> dict[str, np.ndarray]:
    """The ``results.npz`` arrays of a result."""
    body, cams = result.body, result.cameras
    P, T = body.trans.shape[:2]
    cam_R, cam_t = metric_cameras(result)
    return {
        "trans": body.trans.numpy(),
        "root_orient": body.root_orient.numpy(),
        "pose_body": body.pose_body.reshape(P, T, 63).numpy(),
        "betas": body.betas.numpy(),
        "cam_R": cam_R[None].expand(P, T, 3, 3).numpy(),
        "cam_t": cam_t[None].expand(P, T, 3).numpy(),
        "intrins": cams.intrins.float().numpy(),
        "world_scale": np.array(
            [[cams.alpha if result.scale_observed else np.nan]], dtype=np.float32
        ),
        "track_mask": result.track_mask.numpy(),
        "vis_mask": result.vis_mask.numpy(),
        "joints": result.joints.numpy(),
        "track_ids": np.array(result.track_ids),
        "fps": np.array(result.fps, dtype=np.float64),
        "image_size": np.array(cams.image_size, dtype=np.int64),
        "is_static": np.array(cams.is_static),
        "frame_offset": np.array(result.frame_offset, dtype=np.int64),
        "stature": (
            np.full(P, np.nan, dtype=np.float32)
            if result.statures is None
            else result.statures.float().numpy()
        ),
        "world_transform": result.world_transform.float().numpy(),
        "floor_plane": (
            np.full(4, np.nan, dtype=np.float32)
            if result.floor is None
            else result.floor.as_plane().numpy()
        ),
        **body_record_arrays(result.body_model),
    }


def body_record_arrays(record: dict) -> dict[str, np.ndarray]:
    """``Result.body_model`` as the ``body_model_<key>`` scalars of ``results.npz`` (and of the
    AMASS export)."""
    return {f"body_model_{key}": np.array(value) for key, value in record.items()}


def stage_rows(result: Result) -> list[dict]:
    """The ``stages.json`` rows of ``result.stages``."""
    return [s.to_dict() for s in result.stages]


def person_summaries(arrays: dict[str, np.ndarray]) -> list[dict]:
    """What each person did, from ``results.npz`` arrays: ``track``, ``frames`` tracked,
    ``stature_m``, and the pelvis's ``path_m`` (smoothed over 1/6 s), ``displacement_m`` (first
    to last tracked frame) and ``speed_m_s`` (path over the tracked time), measured on the floor
    (x, z) when the output is gravity-aligned, else in 3D; with a floor also ``foot_height_m``,
    the median over the tracked frames of the lowest ankle or toe joint's height above it (joint
    centres: 0.02-0.08 m for someone standing on it; people who share the floor share it), and
    for someone who travels at least ``MIN_STEPPING_PATH`` on the floor ``steps_per_s`` and
    ``step_length_m`` (``_steps``): step length does not depend on the clip's playback speed,
    so it tells a slow walk from a slow-motion video (a walk's steps are 0.5-0.8 m at 1.6-2.2
    steps/s, a run's 0.9-1.8 m at 2.5-3.3)."""
    from scipy.ndimage import gaussian_filter1d

    fps = float(arrays["fps"])
    aligned = np.isfinite(arrays["floor_plane"]).all() if "floor_plane" in arrays else False
    axes = [0, 2] if aligned else [0, 1, 2]
    stature = arrays.get("stature", np.full(len(arrays["track_mask"]), np.nan))
    people = []
    for p, track in enumerate(arrays["track_ids"]):
        idx = np.flatnonzero(arrays["track_mask"][p])
        pelvis = arrays["joints"][p, idx, 0][:, axes].astype(np.float64)
        if len(idx) > 1:
            pelvis = gaussian_filter1d(pelvis, max(fps / 6, 1e-3), axis=0, mode="nearest")
        path = float(np.linalg.norm(np.diff(pelvis, axis=0), axis=1).sum())
        seconds = (idx[-1] - idx[0]) / fps if len(idx) > 1 else 0.0
        row = {
            "track": str(track),
            "frames": int(len(idx)),
            "stature_m": round(float(stature[p]), 3),
            "path_m": round(path, 3),
            "displacement_m": round(float(np.linalg.norm(pelvis[-1] - pelvis[0])), 3),
            "speed_m_s": round(path / seconds, 3) if seconds > 0 else 0.0,
        }  # fmt: skip
        if aligned:
            feet = arrays["joints"][p, idx][:, list(FOOT_JOINTS), 1].min(1)
            row["foot_height_m"] = round(float(np.median(feet)), 3)
            if path >= MIN_STEPPING_PATH:
                row.update(_steps(arrays["joints"][p, idx].astype(np.float64), pelvis, fps))
        people.append(row)
    return people


LEFT_ANKLE, RIGHT_ANKLE = (SMPL_JOINT_NAMES.index(n) for n in ("left_ankle", "right_ankle"))
#: Floor path (m) below which ``person_summaries`` counts no steps.
MIN_STEPPING_PATH = 1.0


def _steps(joints: np.ndarray, pelvis: np.ndarray, fps: float) -> dict:
    """``steps_per_s`` and ``step_length_m`` of a walk or run: a step is a change of sign of the
    left-minus-right ankle offset along the direction of travel (world joints (T, J, 3), y up;
    smoothed floor pelvis (T, 2)); measured between the first and the last step. None where
    fewer than three steps are seen."""
    from scipy.ndimage import gaussian_filter1d

    heading = np.gradient(pelvis, axis=0)
    heading /= np.linalg.norm(heading, axis=1, keepdims=True).clip(1e-9)
    ankles = joints[:, LEFT_ANKLE, [0, 2]] - joints[:, RIGHT_ANKLE, [0, 2]]
    offset = gaussian_filter1d((ankles * heading).sum(1), max(fps / 30, 1e-3), mode="nearest")
    steps = np.flatnonzero(np.diff(np.sign(offset)) != 0)
    if len(steps) < 3:
        return {"steps_per_s": None, "step_length_m": None}
    a, b = steps[0], steps[-1]
    length = float(np.linalg.norm(np.diff(pelvis[a : b + 1], axis=0), axis=1).sum())
    return {
        "steps_per_s": round((len(steps) - 1) * fps / (b - a), 2),
        "step_length_m": round(length / (len(steps) - 1), 3),
    }


def write_result(result: Result, out_dir: str | Path, overwrite: bool = True) -> Path:
    """Write ``results.npz`` and its companions into ``out_dir``; returns the npz path.

    Every file is written beside its name and renamed over it, ``results.npz`` last: a folder
    with ``results.npz`` holds one complete result (commands hold the folder with
    ``files.outputs.claimed_output``).

    Raises:
        OutputError: ``results.npz`` exists and ``overwrite`` is False (checked again here, at
            write time), or the folder cannot be written.
    """
    out = check_writable(Path(out_dir))
    path = out / "results.npz"
    if path.exists() and not overwrite:
        raise OutputError(path, "exists; pass --overwrite to replace it")

    def text(name: str, content: str) -> None:
        write_atomic(out / name, lambda f: f.write(content.encode()))

    text("config.yaml", result.config_yaml)
    text("versions.json", json.dumps(versions(), indent=2))
    text("stages.json", json.dumps(stage_rows(result), indent=2))
    result.history.save(out / "history.csv")
    _plot_history(result, out / "loss.png")
    write_atomic(path, lambda f: np.savez(f, **result_arrays(result)))
    return path


def _plot_history(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = result.history.plot()
    ax.set_title("loss per term (weighted)")
    ax.figure.tight_layout()
    write_atomic(path, lambda f: ax.figure.savefig(f, dpi=100, format="png"))
    plt.close(ax.figure)


def read_result_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a ``results.npz`` (ours or SLAHMR's ``world_results.npz``), as stored.

    Raises:
        InputError: the file is missing, unreadable or lacks a body parameter key.
    """
    path = Path(path)
    data = load_npz(path, "results file")
    missing = [k for k in ("trans", "root_orient", "pose_body", "betas") if k not in data]
    if missing:
        raise InputError(path, f"missing keys {missing}")
    return data


def read_result(path: str | Path) -> Result:
    """Read a ``results.npz`` written by ``write_result`` (or by an earlier version) and the
    companions beside it (``config.yaml``, ``stages.json``, ``history.csv``) into a ``Result``.

    Keys an older or a SLAHMR-layout file lacks get what they meant there: all frames tracked and
    detected, identity cameras, one ``intrins`` row for every frame, the image size twice the
    principal point, 30 fps, frame offset 0, no floor, the identity world transform. Without
    companions ``config_yaml`` is "" and ``history`` and ``stages`` are empty.

    The cameras come back with ``t_w2c = cam_t / world_scale`` (float64) and ``alpha =
    world_scale``, so that writing the result again gives ``cam_t`` bit for bit; without a
    finite ``world_scale`` (static camera, unobserved scale) ``alpha`` is 1 and ``t_w2c`` is
    ``cam_t``.

    Raises:
        InputError: the file is missing or unreadable, lacks a body parameter key, has
            inconsistent shapes, NaN or infinite values where the result has estimates, or a
            companion is malformed (names the file and key).
    """
    path = Path(path)
    data = read_result_arrays(path)
    P, T = check_result_arrays(data, path)
    pose = np.asarray(data["pose_body"])
    body = BodyParams(
        root_orient=torch.as_tensor(data["root_orient"]),
        trans=torch.as_tensor(data["trans"]),
        pose_body=torch.as_tensor(pose).reshape(P, T, 21, 3),
        betas=torch.as_tensor(data["betas"]),
    )
    mask = torch.as_tensor(np.asarray(data.get("track_mask", np.ones((P, T)))).astype(bool))
    vis = data.get("vis_mask")
    floor_plane = np.asarray(data.get("floor_plane", np.full(4, np.nan)))
    stature = data.get("stature")
    return Result(
        body=body,
        cameras=_read_cameras(data, path, P, T),
        track_mask=mask,
        vis_mask=mask.clone() if vis is None else torch.as_tensor(np.asarray(vis).astype(bool)),
        track_ids=[str(s) for s in data.get("track_ids", [str(p) for p in range(P)])],
        fps=float(data.get("fps", 30.0)),
        history=_read_history(path.parent / "history.csv"),
        stages=_read_stages(path.parent / "stages.json"),
        config_yaml=_read_text(path.parent / "config.yaml"),
        joints=torch.as_tensor(data["joints"]) if "joints" in data else None,
        frame_offset=int(data.get("frame_offset", 0)),
        floor=Floor.from_plane(torch.as_tensor(floor_plane)) if floor_plane.size == 4 else None,
        world_transform=torch.as_tensor(np.asarray(data.get("world_transform", np.eye(4)))),
        statures=None if stature is None else torch.as_tensor(np.asarray(stature)),
        scale_observed=bool(np.isfinite(_world_scale(data))),
        body_model=_read_body_record(data, path),
    )


def _read_body_record(data: dict[str, np.ndarray], path: Path) -> dict:
    """The ``body_model_*`` keys (``Result.body_model``); empty for a file that has none."""
    record = {}
    for key in BODY_RECORD_KEYS:
        if f"body_model_{key}" not in data:
            continue
        value = np.asarray(data[f"body_model_{key}"])
        if value.ndim != 0:
            raise InputError(path, f"'body_model_{key}' must be a scalar, got {value.dtype} "
                             f"{value.shape}")  # fmt: skip
        record[key] = value.item()
    return record


def check_result_arrays(data: dict[str, np.ndarray], path: Path) -> tuple[int, int]:
    """Check the arrays of a ``results.npz`` (ours): numeric keys, every key's shape against the
    body parameters' P people and T frames, plausible scalars, and no NaN/inf where the result
    has estimates.

    Returns:
        P and T.

    Raises:
        InputError: names the file and the first key that is wrong.
    """
    _check_dtypes(data, path)
    dims: dict[str, int] = {}
    for key, pattern in (("trans", ("P", "T", 3)), ("root_orient", ("P", "T", 3)),
                         ("betas", ("P", "B"))):  # fmt: skip
        check_shape(np.asarray(data[key]), pattern, path, key, dims)
    P, T = dims["P"], dims["T"]
    pose = np.asarray(data["pose_body"])
    if pose.shape not in ((P, T, 63), (P, T, 21, 3)):
        raise InputError(path, f"'pose_body' has shape {pose.shape}, expected ({P}, {T}, 63)")
    mask = np.asarray(data.get("track_mask", np.ones((P, T)))).astype(bool)
    if mask.shape != (P, T):
        raise InputError(path, f"'track_mask' has shape {tuple(mask.shape)}, expected ({P}, {T})")
    _check_optional_shapes(data, path, dims)
    for key in ("trans", "root_orient", "pose_body", "joints"):
        if key in data:  # per-frame estimates: finite wherever the person is tracked
            check_finite(np.asarray(data[key])[mask], path, key)
    for key in ("betas", "cam_R", "cam_t", "intrins", "world_transform"):
        if key in data:
            check_finite(np.asarray(data[key]), path, key)
    return P, T


def _check_dtypes(data: dict[str, np.ndarray], path: Path) -> None:
    """Every key but ``track_ids`` and the body model's names holds numbers (or booleans)."""
    text = {"track_ids", "body_model_type", "body_model_gender", "body_model_file",
            "body_model_sha256"}  # fmt: skip
    for key, array in data.items():
        if key not in text and np.asarray(array).dtype.kind not in "biuf":
            raise InputError(path, f"'{key}' must be numeric, got dtype {array.dtype}")


def _check_optional_shapes(data: dict[str, np.ndarray], path: Path, dims: dict[str, int]) -> None:
    """The optional keys agree with the body parameters' P people and T frames, and the scalars
    are plausible (``fps`` in ``(0, MAX_FPS]``, ``frame_offset`` a frame index)."""
    shapes = {"joints": ("P", "T", "J", 3), "vis_mask": ("P", "T"), "track_ids": ("P",),
              "world_transform": (4, 4), "floor_plane": (4,), "image_size": (2,),
              "stature": ("P",)}  # fmt: skip
    for key, pattern in shapes.items():
        if key in data:
            check_shape(np.asarray(data[key]), pattern, path, key, dims)
    for key in ("fps", "frame_offset", "is_static"):
        if key in data and np.asarray(data[key]).size != 1:
            raise InputError(path, f"'{key}' must be a scalar, got shape {data[key].shape}")
    if "fps" in data:
        check_fps(float(np.asarray(data["fps"]).reshape(-1)[0]), path)
    if "frame_offset" in data:
        offset = np.asarray(data["frame_offset"], dtype=np.float64).reshape(-1)
        if not (np.isfinite(offset[0]) and offset[0] >= 0 and offset[0] == round(offset[0])):
            raise InputError(path, f"'frame_offset' must be a frame index >= 0, got {offset[0]}")
    if "image_size" in data:
        size = np.asarray(data["image_size"], dtype=np.float64)
        if not (np.all(size >= 1) and np.all(size == np.round(size))):
            raise InputError(path, f"'image_size' must be two positive integers [H, W], got "
                             f"{size.tolist()}")  # fmt: skip


def _world_scale(data: dict[str, np.ndarray]) -> float:
    scale = np.asarray(data.get("world_scale", np.nan), dtype=np.float64).reshape(-1)
    return float(scale[0]) if scale.size else float("nan")


def _read_cameras(data: dict[str, np.ndarray], path: Path, P: int, T: int) -> Cameras:
    """The cameras of ``results.npz`` arrays (``read_result``'s docstring)."""
    eye = np.broadcast_to(np.eye(3, dtype=np.float32), (P, T, 3, 3))
    cam_R = np.asarray(data.get("cam_R", eye))
    cam_t = np.asarray(data.get("cam_t", np.zeros((P, T, 3), np.float32)))
    intrins = np.asarray(data.get("intrins", np.zeros((T, 4), np.float32)))
    if intrins.ndim == 1:
        intrins = np.broadcast_to(intrins, (T, 4))
    dims = {"P": P, "T": T}
    for key, array, pattern in (("cam_R", cam_R, ("P", "T", 3, 3)), ("cam_t", cam_t, ("P", "T", 3)),
                                ("intrins", intrins, ("T", 4))):  # fmt: skip
        check_shape(array, pattern, path, key, dims)
    scale = _world_scale(data)
    alpha = scale if np.isfinite(scale) and scale != 0 else 1.0
    size = data.get("image_size")
    if size is None:  # SLAHMR's default principal point is the image centre
        size = (round(2 * float(intrins[0, 3])), round(2 * float(intrins[0, 2])))
    return Cameras(
        R_w2c=torch.as_tensor(cam_R[0].copy()),
        t_w2c=torch.as_tensor(cam_t[0].astype(np.float64) / alpha),
        intrins=torch.as_tensor(intrins.copy()),
        image_size=tuple(int(s) for s in size),
        is_static=bool(data.get("is_static", False)),
        alpha=alpha,
    )


def _read_text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def _read_history(path: Path) -> LossHistory:
    if not path.is_file():
        return LossHistory()
    try:
        return LossHistory.load(path)
    except (OSError, KeyError, ValueError, csv.Error) as exc:
        raise InputError(path, f"not a loss history written by slahmr-opt ({exc})") from None


def _read_stages(path: Path) -> list[StageSummary]:
    if not path.is_file():
        return []
    rows = load_json(path, "stage summaries")
    try:
        return [StageSummary.from_dict(row) for row in rows]
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(path, f"not a list of stage summaries ({exc!r})") from None
