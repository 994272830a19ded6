"""Person tracks: ``read_tracks`` for SLAHMR track folders, PHALP pickles and tracks ``.npz``.

``read_tracks`` reads any of these formats, cleans the keypoints the way SLAHMR does (confidence
< ``min_conf`` -> 0, OpenPose neck -> 0, undetected frames -> 0; confidences above 1 are clipped,
above ``track_data.MAX_KEYP_CONF`` refused) and selects tracks
(``"all"``, ``"longest-N"`` or a list of ids). The folder layout is described in
``slahmr_opt.inputs.track_dirs``, PHALP's pickle in ``slahmr_opt.inputs.phalp``; the npz layout
is defined here (and in ``docs/formats.md``).

Tracks ``.npz`` format (version 1), read with ``np.load(allow_pickle=False)``; strings are
fixed-width unicode arrays (``np.asarray(list_of_str)``), never Python objects::

    key                     shape          dtype    meaning
    kp2d                    (P, T, K, 3)   float    [u, v, confidence], pixels; K = 17 or 25;
                                                    |u|, |v| <= 10 x max(H, W); confidence <= 1
    kp_format               ()             str      "coco17" (K = 17) or "op25" (K = 25)
    vis_mask                (P, T)         bool     person detected in this frame
    track_ids               (P,)           str      distinct track names
    fps                     ()             float    frames per second, in (0, 1000]
    format_version          ()             int      optional, 1
    bbox                    (P, T, 4)      float    optional, [x0, y0, w, h] in pixels
    frame_names             (T,)           str      optional, image file stems
    image_size              (2,)           int      optional, [height, width] in pixels
    smpl_global_orient_c    (P, T, 3)      float    optional*, root orientation, camera frame, aa
    smpl_body_pose          (P, T, 21, 3)  float    optional*, SMPL-H body joints, axis-angle
    smpl_betas              (P, T, B)      float    optional*, shape coefficients
    smpl_transl_c           (P, T, 3)      float    optional*, SMPL transl, camera frame, metres
    smpl_valid              (P, T)         bool     optional*, where a guess exists

``*``: the five ``smpl_*`` keys come together or not at all. Frame ``t`` is video frame ``t``; T
may include frames where nobody is detected. No value may be NaN or infinite (use 0 with
confidence 0 for a missing keypoint); unknown keys are rejected so that typos do not go unnoticed.
"""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.checks import (
    as_positive_scalar,
    as_scalar_string,
    as_strings,
    check_finite,
    check_fps,
    check_positive,
    check_shape,
    load_npz,
    prepare_output,
    write_atomic,
)
from slahmr_opt.inputs.phalp import read_phalp
from slahmr_opt.inputs.track_data import (
    MAX_NUM_TRACKS,
    MIN_KEYP_CONF,
    MIN_TRACK_LEN,
    NUM_KEYPOINTS,
    TrackData,
    TrackSelection,
    check_confidences,
    check_tracks_detected,
    clean_keypoints,
    select_tracks,
)
from slahmr_opt.inputs.track_dirs import read_track_dirs, write_track_dirs
from slahmr_opt.types import KEYPOINT_FORMATS, SMPLGuess

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
REQUIRED_KEYS = ("kp2d", "kp_format", "vis_mask", "track_ids", "fps")
SMPL_KEYS = {
    "smpl_global_orient_c": ("P", "T", 3),
    "smpl_body_pose": ("P", "T", 21, 3),
    "smpl_betas": ("P", "T", "B"),
    "smpl_transl_c": ("P", "T", 3),
}
OPTIONAL_KEYS = ("format_version", "bbox", "frame_names", "image_size", *SMPL_KEYS, "smpl_valid")
PICKLE_SUFFIXES = (".pkl", ".pickle")


def read_tracks(
    path: str | Path,
    track_selection: TrackSelection = "all",
    min_track_len: int = MIN_TRACK_LEN,
    max_tracks: int = MAX_NUM_TRACKS,
    min_conf: float = MIN_KEYP_CONF,
    shot: int = 0,
) -> TrackData:
    """Read, clean and select person tracks from a track folder, PHALP pickle or tracks ``.npz``.

    Args:
        path: a track folder (``<root>/<tid>/<frame>_keypoints.json``), PHALP's output pickle
            (``.pkl``) or a tracks ``.npz`` file.
        track_selection: ``"all"``, ``"longest-N"`` or a list of track ids (see ``select_tracks``).
        min_track_len: ``"all"``/``"longest-N"`` keep tracks with more detected frames than this.
        max_tracks: at most this many tracks for ``"all"``.
        min_conf: keypoint confidences below this become 0.
        shot: PHALP pickles: the shot to read (0 = first); other formats have none (must be 0).

    Returns:
        The selected tracks, (P, T, K, 3) keypoints over all T frames of the input.

    Raises:
        InputError: the input is missing, malformed, or has a track that is never detected.
        ConfigError: ``track_selection`` is malformed, or ``shot`` is not 0 for a format
            without shots.
    """
    path = Path(path)
    expected = "expected a SLAHMR track folder, a PHALP .pkl or a tracks .npz"
    if not path.exists():
        raise InputError(path, f"tracks input not found ({expected})")
    is_pickle = path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES
    if shot != 0 and not is_pickle:
        raise ConfigError(f"data.shot={shot}: only PHALP pickles have shots ({path} has none)")
    if path.is_dir():
        tracks = read_track_dirs(path)
    elif path.suffix == ".npz":
        tracks = read_tracks_npz(path)
    elif is_pickle:
        tracks = read_phalp(path, shot)
    else:
        raise InputError(path, f"unsupported tracks input: {expected}")
    return prepare_tracks(tracks, track_selection, min_track_len, max_tracks, min_conf)


def prepare_tracks(
    tracks: TrackData,
    track_selection: TrackSelection = "all",
    min_track_len: int = MIN_TRACK_LEN,
    max_tracks: int = MAX_NUM_TRACKS,
    min_conf: float = MIN_KEYP_CONF,
) -> TrackData:
    """Clean and select tracks as ``read_tracks`` does after reading them (arguments there);
    for tracks made in memory (the video front end's).

    Raises:
        InputError: a track is never detected.
        ConfigError: ``track_selection`` is malformed.
    """
    check_tracks_detected(tracks)
    tracks = check_confidences(tracks)
    tracks = replace(
        tracks, kp2d=clean_keypoints(tracks.kp2d, tracks.vis_mask, tracks.kp_format, min_conf)
    )
    return select_tracks(tracks, track_selection, min_track_len, max_tracks)


def read_tracks_npz(path: str | Path) -> TrackData:
    """Read every track of a tracks ``.npz`` (format in the module docstring), unfiltered.

    Returns:
        TrackData with the file's confidences as stored; ``read_tracks`` cleans and selects.

    Raises:
        InputError: unreadable file, missing or unknown keys, wrong shapes or dtypes, NaN/inf.
    """
    path = Path(path)
    data = load_npz(path, "tracks file")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if missing or unknown:
        raise InputError(
            path, f"tracks file keys: missing {missing}, unknown {unknown}; see docs/formats.md"
        )
    if "format_version" in data and _int_scalar(data, "format_version", path) != FORMAT_VERSION:
        raise InputError(
            path,
            f"format_version {data['format_version']} is not supported "
            f"(this reader knows {FORMAT_VERSION})",
        )
    kp_format = as_scalar_string(data["kp_format"], path, "kp_format")
    if kp_format not in KEYPOINT_FORMATS:
        raise InputError(path, f"'kp_format' is {kp_format!r}, expected one of {KEYPOINT_FORMATS}")
    dims: dict[str, int] = {}
    kp2d = _float_array(data, "kp2d", ("P", "T", NUM_KEYPOINTS[kp_format], 3), path, dims)
    vis = _bool_array(data, "vis_mask", ("P", "T"), path, dims)
    track_ids = as_strings(data["track_ids"], path, "track_ids")
    check_shape(data["track_ids"], ("P",), path, "track_ids", dims)
    if len(set(track_ids)) != len(track_ids):
        raise InputError(path, f"'track_ids' are not distinct: {track_ids}")
    bbox = _float_array(data, "bbox", ("P", "T", 4), path, dims) if "bbox" in data else None
    frame_names = None
    if "frame_names" in data:
        frame_names = as_strings(data["frame_names"], path, "frame_names")
        check_shape(data["frame_names"], ("T",), path, "frame_names", dims)
    return TrackData(
        kp2d=torch.as_tensor(kp2d, dtype=torch.float32),
        kp_format=kp_format,
        vis_mask=torch.as_tensor(vis),
        track_ids=track_ids,
        fps=check_fps(as_positive_scalar(data["fps"], path, "fps"), path),
        bbox=None if bbox is None else torch.as_tensor(bbox, dtype=torch.float32),
        smpl_guess=_read_guess(data, path, dims),
        frame_names=frame_names,
        image_size=_read_image_size(data, path),
        source=path,
    )


def _float_array(data, key: str, pattern, path: Path, dims: dict[str, int]) -> np.ndarray:
    array = data[key]
    if array.dtype.kind not in "iuf":
        raise InputError(path, f"'{key}' must be numeric, got dtype {array.dtype}")
    check_shape(array, pattern, path, key, dims)
    check_finite(array, path, key)
    return array.astype(np.float64)


def _bool_array(data, key: str, pattern, path: Path, dims: dict[str, int]) -> np.ndarray:
    array = data[key]
    check_shape(array, pattern, path, key, dims)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind in "iu" and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise InputError(path, f"'{key}' must be bool (or 0/1 integers), got dtype {array.dtype}")


def _int_scalar(data, key: str, path: Path) -> int:
    array = data[key]
    if array.size != 1 or array.dtype.kind not in "iu":
        raise InputError(
            path, f"'{key}' must be an integer scalar, got {array.dtype} {array.shape}"
        )
    return int(array.reshape(-1)[0])


def _read_image_size(data, path: Path) -> tuple[int, int] | None:
    if "image_size" not in data:
        return None
    size = data["image_size"]
    if size.shape != (2,) or size.dtype.kind not in "iuf" or not np.all(size == np.round(size)):
        raise InputError(path, f"'image_size' must be two integers [height, width], got {size}")
    check_positive(size.astype(np.float64), path, "image_size")
    return int(size[0]), int(size[1])


def _read_guess(data, path: Path, dims: dict[str, int]) -> SMPLGuess | None:
    present = [k for k in (*SMPL_KEYS, "smpl_valid") if k in data]
    if not present:
        return None
    if len(present) != len(SMPL_KEYS) + 1:
        missing = [k for k in (*SMPL_KEYS, "smpl_valid") if k not in data]
        raise InputError(path, f"SMPL guess keys come together: {present} given, {missing} missing")
    arrays = {k: _float_array(data, k, pattern, path, dims) for k, pattern in SMPL_KEYS.items()}
    valid = _bool_array(data, "smpl_valid", ("P", "T"), path, dims)
    return SMPLGuess.from_arrays(*(arrays[k] for k in SMPL_KEYS), valid)


def write_tracks_npz(path: str | Path, tracks: TrackData, overwrite: bool = False) -> Path:
    """Write tracks as a tracks ``.npz`` (format in the module docstring), compressed.

    Args:
        path: output file; must end in ``.npz``.
        tracks: the tracks; ``tracks.fps`` must be set.
        overwrite: replace an existing non-empty file.

    Returns:
        ``path`` as a Path.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is False.
        ValueError: the path does not end in ``.npz`` or ``tracks.fps`` is missing.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a tracks file must end in .npz")
    if tracks.fps is None or not tracks.fps > 0:
        raise ValueError(f"{path}: the tracks npz format requires fps > 0, got {tracks.fps}")
    arrays = {
        "format_version": np.asarray(FORMAT_VERSION),
        "kp2d": tracks.kp2d.detach().numpy().astype(np.float32),
        "kp_format": np.asarray(tracks.kp_format),
        "vis_mask": tracks.vis_mask.numpy().astype(bool),
        "track_ids": np.asarray([str(t) for t in tracks.track_ids]),
        "fps": np.asarray(float(tracks.fps)),
    }
    if tracks.bbox is not None:
        arrays["bbox"] = tracks.bbox.detach().numpy().astype(np.float32)
    if tracks.frame_names is not None:
        arrays["frame_names"] = np.asarray([str(n) for n in tracks.frame_names])
    if tracks.image_size is not None:
        arrays["image_size"] = np.asarray(tracks.image_size, dtype=np.int64)
    guess = tracks.smpl_guess
    if guess is not None:
        for key, field in zip(
            SMPL_KEYS, ("global_orient_c", "body_pose", "betas", "transl_c"), strict=True
        ):
            arrays[key] = getattr(guess, field).detach().numpy().astype(np.float32)
        arrays["smpl_valid"] = guess.valid.numpy().astype(bool)
    prepare_output(path, overwrite)
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))
    log.info("wrote %d tracks x %d frames to %s", tracks.num_people, tracks.num_frames, path)
    return path


__all__ = [
    "TrackData",
    "read_phalp",
    "read_track_dirs",
    "read_tracks",
    "read_tracks_npz",
    "write_track_dirs",
    "write_tracks_npz",
]
