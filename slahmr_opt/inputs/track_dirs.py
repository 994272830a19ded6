"""SLAHMR's exported track folders (``slahmr/track_preds/<seq>/``): reader and writer.

Layout (``research/slahmr.md`` section 3.2, written by SLAHMR's ``preproc/export_phalp.py``)::

    <root>/<tid>/<frame>_keypoints.json   {"people": [{"pose_keypoints_2d": 25x3 or flat 75}]}
    <root>/<tid>/<frame>_smpl.json        {"betas": [B], "body_pose": [[3]] * 23,
                                           "global_orient": [3], "cam_trans": [3]}   (optional)

``<tid>`` is the track id (SLAHMR writes ``f"{tid:03d}"``), ``<frame>`` the image file stem
(``000012``). Keypoints are OpenPose BODY_25 slots filled from COCO-17, so slots 1 (neck), 8 (mid
hip) and 19-24 (feet) have confidence 0. Only ``people[0]`` is read; ``"people": []`` means not
detected. A frame without a keypoints file inside a track's interval is occluded.

Frame index: ``track_data.frame_numbering``, SLAHMR's own: image ``000001`` (ffmpeg's
first frame) is frame 0, the first row of a camera file covering the whole video; names that
include ``000000`` count from 0; names that are not integers are numbered by sorted position.
``body_pose`` keeps its first 21 joints (SMPL-H body); the folder records neither fps nor image
size.
"""

import json
import logging
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import as_float, check_finite, load_json, prepare_output
from slahmr_opt.inputs.initializers.common import REST_PELVIS
from slahmr_opt.inputs.track_data import TrackData, frame_numbering
from slahmr_opt.types import SMPLGuess

log = logging.getLogger(__name__)

KEYPOINTS_SUFFIX = "_keypoints.json"
SMPL_SUFFIX = "_smpl.json"
NUM_OP25 = 25
NUM_BODY_JOINTS = 21
NUM_SMPL_JOINTS = 23
COCO17_TO_OP25 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
"""OpenPose BODY_25 slot of each COCO-17 keypoint, as SLAHMR fills them (``track.py`` L188-194)."""


def read_track_dirs(root: str | Path) -> TrackData:
    """Read every track of a SLAHMR track folder, unfiltered (see ``read_tracks`` for cleaning).

    Args:
        root: the folder holding one sub-folder per track.

    Returns:
        TrackData with ``kp_format="op25"``, raw confidences, ``fps=None``, ``bbox=None``.

    Raises:
        InputError: missing folder, no tracks, malformed or inconsistent JSON files.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(root, "track folder not found")
    if not root.is_dir():
        raise InputError(root, "expected a track folder (<root>/<tid>/<frame>_keypoints.json)")
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise InputError(root, "no track sub-folders (<root>/<tid>/<frame>_keypoints.json) found")
    kp_files = [_frame_files(d, KEYPOINTS_SUFFIX) for d in dirs]
    smpl_files = [_frame_files(d, SMPL_SUFFIX) for d in dirs]
    for d, kps in zip(dirs, kp_files, strict=True):
        if not kps:
            raise InputError(d, f"track folder has no *{KEYPOINTS_SUFFIX} files")
    names = sorted(set().union(*kp_files, *smpl_files))
    values, frame_names, absolute = frame_numbering(names, root)
    index = dict(zip(names, values, strict=True))
    num_people, num_frames = len(dirs), len(frame_names)

    kp2d = np.zeros((num_people, num_frames, NUM_OP25, 3))
    vis = np.zeros((num_people, num_frames), dtype=bool)
    for p, files in enumerate(kp_files):
        for name, path in files.items():
            keypoints = _read_keypoints(path)
            if keypoints is not None:
                kp2d[p, index[name]] = keypoints
                vis[p, index[name]] = True
    guess = _read_guesses(smpl_files, index, num_frames) if any(smpl_files) else None
    log.info("%s: read %d tracks over %d frames", root, num_people, num_frames)
    return TrackData(
        kp2d=torch.as_tensor(kp2d, dtype=torch.float32),
        kp_format="op25",
        vis_mask=torch.as_tensor(vis),
        track_ids=[d.name for d in dirs],
        smpl_guess=guess,
        frame_names=frame_names,
        absolute_frames=absolute,
        source=root,
    )


def _frame_files(track_dir: Path, suffix: str) -> dict[str, Path]:
    return {
        f.name[: -len(suffix)]: f
        for f in track_dir.iterdir()
        if f.name.endswith(suffix) and len(f.name) > len(suffix) and f.is_file()
    }


def _read_keypoints(path: Path) -> np.ndarray | None:
    """Read ``people[0]`` of one keypoints file as a (25, 3) array, or None if nobody is in it."""
    data = load_json(path, "keypoints file")
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise InputError(path, 'expected {"people": [{"pose_keypoints_2d": [...]}]}')
    if not people:
        return None
    if not isinstance(people[0], dict) or "pose_keypoints_2d" not in people[0]:
        raise InputError(path, "people[0] has no 'pose_keypoints_2d'")
    keypoints = as_float(people[0]["pose_keypoints_2d"], path, "pose_keypoints_2d")
    if keypoints.size != NUM_OP25 * 3:
        raise InputError(
            path,
            f"'pose_keypoints_2d' has {keypoints.size} values, expected 25x3 = 75 "
            "(OpenPose BODY_25)",
        )
    keypoints = keypoints.reshape(NUM_OP25, 3)
    check_finite(keypoints, path, "pose_keypoints_2d")
    return keypoints


def _read_guesses(
    smpl_files: list[dict[str, Path]], index: dict[str, int], num_frames: int
) -> SMPLGuess:
    """Read every ``_smpl.json`` into (P, T, ...) arrays with a validity mask."""
    num_people = len(smpl_files)
    orient = np.zeros((num_people, num_frames, 3))
    pose = np.zeros((num_people, num_frames, NUM_BODY_JOINTS, 3))
    transl = np.zeros((num_people, num_frames, 3))
    valid = np.zeros((num_people, num_frames), dtype=bool)
    betas = None
    for p, files in enumerate(smpl_files):
        for name, path in sorted(files.items()):
            entry = _read_smpl(path)
            if betas is None:
                betas = np.zeros((num_people, num_frames, entry["betas"].size))
            elif entry["betas"].size != betas.shape[-1]:
                raise InputError(
                    path,
                    f"'betas' has {entry['betas'].size} values, other files have {betas.shape[-1]}",
                )
            t = index[name]
            orient[p, t], pose[p, t] = entry["global_orient"], entry["body_pose"]
            betas[p, t], transl[p, t], valid[p, t] = entry["betas"], entry["cam_trans"], True
    return SMPLGuess.from_arrays(orient, pose, betas, transl, valid, REST_PELVIS["smpl"])


def _read_smpl(path: Path) -> dict[str, np.ndarray]:
    data = load_json(path, "SMPL file")
    keys = ("betas", "body_pose", "global_orient", "cam_trans")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise InputError(path, f"expected keys {list(keys)}, found {found}")
    entry = {k: as_float(data[k], path, k).reshape(-1) for k in keys}
    for key in keys:
        check_finite(entry[key], path, key)
    for key in ("global_orient", "cam_trans"):
        if entry[key].size != 3:
            raise InputError(path, f"'{key}' has {entry[key].size} values, expected 3")
    pose = entry["body_pose"]
    if pose.size % 3 or pose.size < NUM_BODY_JOINTS * 3:
        raise InputError(
            path,
            f"'body_pose' has {pose.size} values, expected at least 21x3 axis-angle "
            "(SLAHMR writes 23x3)",
        )
    entry["body_pose"] = pose.reshape(-1, 3)[:NUM_BODY_JOINTS]
    if entry["betas"].size == 0:
        raise InputError(path, "'betas' is empty")
    return entry


def write_track_dirs(root: str | Path, tracks: TrackData, overwrite: bool = False) -> Path:
    """Write tracks in SLAHMR's folder layout (one keypoints file per detected frame).

    COCO-17 keypoints are placed in their OpenPose BODY_25 slots the way SLAHMR does; frames
    where ``vis_mask`` is False get no file (occluded); ``_smpl.json`` files are written where
    ``smpl_guess.valid``, with ``body_pose`` padded to SLAHMR's 23 joints with zeros. Frames are
    named ``tracks.frame_names`` or, as SLAHMR's extracted images, ``f"{t + 1:06d}"`` (frame 0 is
    ``000001``). fps, boxes and image size are not stored.

    Args:
        root: output folder.
        tracks: tracks to write; every track needs at least one detected frame.
        overwrite: replace the keypoints and SMPL files of an existing non-empty folder.

    Returns:
        ``root`` as a Path.

    Raises:
        FileExistsError: ``root`` is not empty and ``overwrite`` is False.
        ValueError: a track has no detected frame, or ids / frame names cannot be file names.
    """
    root = Path(root)
    names = tracks.frame_names or [f"{t + 1:06d}" for t in range(tracks.num_frames)]
    _check_names(tracks, names)
    if overwrite and root.is_dir():
        _remove_old_frames(root)
    prepare_output(root, overwrite, is_dir=True)
    kp2d = _to_op25(tracks.kp2d.detach().double().numpy(), tracks.kp_format)
    vis = tracks.vis_mask.numpy()
    guess = tracks.smpl_guess
    for p, tid in enumerate(tracks.track_ids):
        track_dir = root / tid
        track_dir.mkdir(parents=True, exist_ok=True)
        for t in np.flatnonzero(vis[p]):
            people = [{"pose_keypoints_2d": kp2d[p, t].tolist()}]
            _dump(track_dir / f"{names[t]}{KEYPOINTS_SUFFIX}", {"people": people})
        if guess is not None:
            for t in np.flatnonzero(guess.valid[p].numpy()):
                _dump(track_dir / f"{names[t]}{SMPL_SUFFIX}", _smpl_entry(guess, p, int(t)))
    log.info("wrote %d tracks to %s", tracks.num_people, root)
    return root


def _check_names(tracks: TrackData, names: list[str]) -> None:
    if len(names) != tracks.num_frames or len(set(names)) != len(names):
        raise ValueError(f"need {tracks.num_frames} distinct frame names, got {len(names)}")
    for name in [*names, *tracks.track_ids]:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"{name!r} cannot be used as a file or folder name")
    if len(set(tracks.track_ids)) != len(tracks.track_ids):
        raise ValueError(f"track ids are not distinct: {tracks.track_ids}")
    empty = [
        tid
        for tid, row in zip(tracks.track_ids, tracks.vis_mask, strict=True)
        if not bool(row.any())
    ]
    if empty:
        raise ValueError(
            f"tracks {empty} have no detected frame; the folder layout cannot hold them"
        )


def _remove_old_frames(root: Path) -> None:
    """Delete the files this layout consists of (nothing else) so no stale frame survives."""
    for track_dir in [d for d in root.iterdir() if d.is_dir()]:
        for f in track_dir.iterdir():
            if f.name.endswith((KEYPOINTS_SUFFIX, SMPL_SUFFIX)) and f.is_file():
                f.unlink()
        if not any(track_dir.iterdir()):
            track_dir.rmdir()


def _to_op25(kp2d: np.ndarray, kp_format: str) -> np.ndarray:
    """(P, T, K, 3) keypoints -> (P, T, 25, 3) OpenPose BODY_25 slots (empty slots are zero)."""
    if kp_format == "op25":
        return kp2d
    out = np.zeros((*kp2d.shape[:2], NUM_OP25, 3))
    out[:, :, list(COCO17_TO_OP25)] = kp2d
    return out


def _smpl_entry(guess: SMPLGuess, p: int, t: int) -> dict[str, list]:
    """One ``_smpl.json``; ``cam_trans`` is SMPL's ``transl`` (guesses without ``rest_pelvis``
    are taken as made with a body whose rest pelvis is at the origin, as the built-in one's)."""
    rest = np.zeros(3) if guess.rest_pelvis is None else guess.rest_pelvis.double().numpy()
    cam_trans = guess.transl_c[p, t].double().numpy() + rest - REST_PELVIS["smpl"]
    pose = np.zeros((NUM_SMPL_JOINTS, 3))
    pose[:NUM_BODY_JOINTS] = guess.body_pose[p, t].double().numpy()
    return {
        "betas": guess.betas[p, t].double().tolist(),
        "body_pose": pose.tolist(),
        "global_orient": guess.global_orient_c[p, t].double().tolist(),
        "cam_trans": cam_trans.tolist(),
    }


def _dump(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)
