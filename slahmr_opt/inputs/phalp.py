"""PHALP's output pickle read as person tracks: ``read_phalp``.

PHALP (``phalp/trackers/PHALP.py``, ``track``) writes ``joblib.dump(final_visuals_dic, ...,
compress=3)``: a dict keyed by frame path (``<img_dir>/000012.jpg``), one record per frame::

    time, shot, frame_path       scalars: processing index, 1 at a detected shot change, the key
    tid                          list: every confirmed track, detected in this frame or not
    tracked_ids                  list: the tracks detected in this frame (time_since_update == 0)
    per entry i of tid (parallel lists; a track not detected here repeats its last detection):
      bbox         (4,)          [x0, y0, w, h], pixels
      center       (2,)          centre of the (padded) box, pixels
      size         [H, W]        image size, pixels
      class_name   int           detector class (0 = person)
      smpl         dict          global_orient (1, 3, 3), body_pose (23, 3, 3), betas (10,)
      camera_bbox  (3,)          weak-perspective [s, tx, ty] of the crop (HMR2 ``pred_cam``)
      2d_joints    (90,)         45 projected model joints (x, y), flattened, in [0, 1] of the
                                 image padded to a max(H, W) square (first 25: OpenPose BODY_25)
      extra_data   (25, 3)       SLAHMR's ``preproc/track.py``: ViTPose COCO-17 [u, v, conf] in
                                 pixels, placed in OpenPose BODY_25 slots; plain PHALP / 4D-Humans
                                 store the detection index (an int) here instead
    (also tracked_bbox, tracked_time, scale, img_path, img_name, conf, annotations, camera,
     3d_joints, mask: not read)

SLAHMR's older ``release`` branch (PHALP_plus) stored the keypoints under ``vitpose`` and the
crop camera under ``camera``; both are read when the newer keys are absent.

What is read, as SLAHMR's ``preproc/export_phalp.py`` does:

* only entries whose ``tid`` is in ``tracked_ids`` (and of class 0 when ``class_name`` is
  present); a track's frames without such an entry are occluded (``vis_mask`` False);
* frames: an image stem that is an integer is the video frame index (``000012`` -> 12), else
  frames are numbered by sorted stem; shot ``k`` is the set of frames where the cumulative sum of
  the ``shot`` flags (in frame order) equals ``k``; only the chosen shot's frames are read, and
  frames after it are dropped (frame ``t`` stays video frame ``t``);
* keypoints (``op25``): ViTPose from ``extra_data`` or ``vitpose`` ((25, 3) BODY_25 slots, or
  (17, 3) COCO-17 placed in them); without ViTPose, the model's own ``2d_joints`` mapped to pixels
  (``u = x * max(H, W) - (max(H, W) - W) // 2``, likewise ``v`` with H), confidence 1, hips moved
  to where detectors mark them (``slahmr_opt.body.adjust_hips``) since they are SMPL's joints;
* SMPL guesses: rotation matrices to axis-angle, ``body_pose[:21]``, ``betas``, and SLAHMR's
  translation with ``f = (H + W) / 2``, ``b = max(bbox w, bbox h)``, ``(cx, cy) = center``::

      [s, tx_crop, ty_crop] = camera_bbox;  tz = 2 f / (b s + 1e-6)
      tx = tx_crop + tz (cx - W / 2) / f;    ty = ty_crop + tz (cy - H / 2) / f

Track ids are ``f"{tid:03d}"`` as in SLAHMR's track folders. The pickle records no fps.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.safe_pickle import load_pickle
from slahmr_opt.inputs.initializers.common import REST_PELVIS
from slahmr_opt.inputs.track_data import TrackData, frame_numbering
from slahmr_opt.inputs.track_dirs import COCO17_TO_OP25, NUM_BODY_JOINTS, NUM_OP25
from slahmr_opt.types import SMPLGuess

log = logging.getLogger(__name__)

WHAT = "PHALP pickle"
PERSON_CLASS = 0
CAM_EPS = 1e-6
"""SLAHMR's guard in ``tz = 2 f / (b s + 1e-6)`` (``export_phalp.py``)."""
OP25_HIPS = (12, 9, 8)
"""OpenPose BODY_25 slots of (LHip, RHip, MidHip)."""


@dataclass
class _Detection:
    keypoints: np.ndarray  # (25, 3) op25
    bbox: np.ndarray  # (4,)
    guess: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None  # orient, pose, betas, t


@dataclass
class _Reader:
    """Reads the detections of one pickle; remembers the keypoint source and image size."""

    path: Path
    source: str | None = None
    sizes: set[tuple[int, int]] = field(default_factory=set)
    num_betas: int | None = None
    bad_depth: int = 0

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(self.path, f"{where}: {problem}")

    def item(self, record: dict, key: str, i: int, where: str) -> Any:
        values = record.get(key)
        try:
            return values[i]
        except (TypeError, IndexError, KeyError):
            raise self.fail(where, f"'{key}' has no entry {i} (one per entry of 'tid')") from None

    def array(self, value: Any, size: int | None, key: str, where: str) -> np.ndarray:
        """``value`` as a flat float64 array of ``size`` finite values (any size if None)."""
        try:
            array = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise self.fail(where, f"'{key}' is not numeric: {value!r:.60}") from None
        if size is not None and array.size != size:
            raise self.fail(where, f"'{key}' has {array.size} values, expected {size}")
        if not np.isfinite(array).all():
            raise self.fail(where, f"'{key}' has NaN/inf values")
        return array

    def detection(self, record: dict, i: int, where: str) -> _Detection:
        size = self.array(self.item(record, "size", i, where), 2, "size", where)
        if not (size > 0).all() or not np.array_equal(size, np.round(size)):
            raise self.fail(where, f"'size' must be two positive integers [H, W], got {size}")
        height, width = int(size[0]), int(size[1])
        self.sizes.add((height, width))
        bbox = self.array(self.item(record, "bbox", i, where), 4, "bbox", where)
        guess = self.guess(record, i, where, bbox, height, width) if "smpl" in record else None
        return _Detection(self.keypoints(record, i, where, height, width), bbox, guess)

    def keypoints(self, record: dict, i: int, where: str, height: int, width: int) -> np.ndarray:
        source = _keypoint_source(record, i)
        if source is None:
            raise self.fail(
                where,
                "no keypoints: neither ViTPose keypoints ('extra_data' of SLAHMR's track.py, or "
                "'vitpose') nor the model's '2d_joints'",
            )
        if self.source is None:
            self.source = source
            log.info("%s: keypoints from '%s'", self.path, source)
            if source == "2d_joints":
                log.warning(
                    "%s: no ViTPose keypoints in the pickle; fitting to the tracker's own "
                    "projected model joints ('2d_joints'), which are not detections",
                    self.path,
                )
        elif source != self.source:
            raise self.fail(where, f"keypoints come from '{source}', earlier from '{self.source}'")
        values = self.array(self.item(record, source, i, where), None, source, where)
        if source == "2d_joints":
            return _joints_to_op25(values, height, width, self, where)
        return _vitpose_to_op25(values, self, where)

    def guess(
        self, record: dict, i: int, where: str, bbox: np.ndarray, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        smpl = self.item(record, "smpl", i, where)
        keys = ("global_orient", "body_pose", "betas")
        if not isinstance(smpl, dict) or any(k not in smpl for k in keys):
            raise self.fail(where, f"'smpl' must be a dict with keys {list(keys)}")
        orient = self.array(smpl["global_orient"], 9, "smpl.global_orient", where)
        pose = self.array(smpl["body_pose"], None, "smpl.body_pose", where)
        if pose.size % 9 or pose.size < NUM_BODY_JOINTS * 9:
            raise self.fail(
                where, f"'smpl.body_pose' has {pose.size} values, expected (23, 3, 3) matrices"
            )
        betas = self.array(smpl["betas"], self.num_betas, "smpl.betas", where)
        self.num_betas = betas.size
        cam_key = "camera_bbox" if "camera_bbox" in record else "camera"
        cam = self.array(self.item(record, cam_key, i, where), 3, cam_key, where)
        center = self.array(self.item(record, "center", i, where), 2, "center", where)
        transl = _crop_camera_to_transl(cam, center, bbox, height, width)
        if not transl[2] > 0:
            self.bad_depth += 1
            return None
        matrices = np.concatenate(
            [orient.reshape(1, 3, 3), pose.reshape(-1, 3, 3)[:NUM_BODY_JOINTS]]
        )
        rotvecs = Rotation.from_matrix(matrices).as_rotvec()
        return rotvecs[0], rotvecs[1:], betas, transl


def read_phalp(path: str | Path, shot: int = 0) -> TrackData:
    """Read the tracks of one shot of a PHALP output pickle (layout in the module docstring).

    Args:
        path: the ``.pkl`` file PHALP wrote (``joblib.dump``, any compression).
        shot: which shot (0 = the first), counted by PHALP's shot-change flags.

    Returns:
        TrackData with ``kp_format="op25"``, raw confidences, ``fps=None``, boxes, SMPL guesses,
        image size; frames ``0 .. last frame of the shot``.

    Raises:
        InputError: unreadable or refused pickle, malformed records, missing shot or keypoints.
        ConfigError: ``shot`` is negative.
    """
    path = Path(path)
    if not isinstance(shot, int) or isinstance(shot, bool) or shot < 0:
        raise ConfigError(f"data.shot must be an integer >= 0, got {shot!r}")
    data = load_pickle(path, WHAT, torch_tensors=True)  # older PHALP stored torch embeddings
    if not isinstance(data, dict) or not data:
        raise InputError(
            path,
            f"a {WHAT} is a non-empty dict keyed by frame path, got {type(data).__name__}"
            + (" (empty)" if isinstance(data, dict) else ""),
        )
    names, records = _frame_records(data, path)
    index, all_names, absolute = frame_numbering(names, path)
    order = sorted(range(len(names)), key=lambda k: index[k])
    shots = _shot_numbers([records[k] for k in order], [names[k] for k in order], path)
    chosen = [order[j] for j in range(len(order)) if shots[j] == shot]
    if not chosen:
        raise InputError(path, f"has shots 0..{shots[-1]}; shot {shot} does not exist")
    num_frames = index[chosen[-1]] + 1

    reader = _Reader(path)
    tracks: dict[Any, dict[int, _Detection]] = {}
    for k in chosen:
        for tid, i in _tracked_entries(records[k], names[k], path):
            where = f"frame {names[k]!r}, tid {tid}"
            track = tracks.setdefault(tid, {})
            if index[k] in track:
                raise reader.fail(where, "the track is listed twice in this frame")
            track[index[k]] = reader.detection(records[k], i, where)
    if not tracks:
        raise InputError(path, f"no tracked person (tid in tracked_ids) in shot {shot}")
    if len(reader.sizes) > 1:
        raise InputError(path, f"detections disagree on the image size [H, W]: {reader.sizes}")
    if reader.bad_depth:
        log.warning("%s: %d SMPL guesses with depth <= 0 were dropped", path, reader.bad_depth)
    tids = sorted(tracks, key=_tid_sort_key)
    log.info("%s: shot %d, %d tracks over %d frames", path, shot, len(tids), num_frames)
    frame_names = all_names[:num_frames]
    return TrackData(
        **_stack(tracks, tids, num_frames),
        kp_format="op25",
        track_ids=[_tid_name(t) for t in tids],
        frame_names=frame_names,
        image_size=reader.sizes.pop(),
        absolute_frames=absolute,
        source=path,
        first_frame=index[chosen[0]],
    )


def _frame_records(data: dict, path: Path) -> tuple[list[str], list[dict]]:
    """Image stems and records of every frame; the key is the frame path."""
    names, records, seen = [], [], {}
    for key, record in data.items():
        if not isinstance(key, str) or not isinstance(record, dict):
            raise InputError(
                path,
                f"entry {key!r}: expected frame path -> dict (PHALP run on an image folder), "
                f"got {type(key).__name__} -> {type(record).__name__}",
            )
        name = key.replace("\\", "/").rsplit("/", 1)[-1]
        name = name.rsplit(".", 1)[0] if "." in name else name
        if name in seen:
            raise InputError(path, f"frames {seen[name]!r} and {key!r} have the same name")
        seen[name] = key
        names.append(name)
        records.append(record)
    return names, records


def _shot_numbers(records: list[dict], names: list[str], path: Path) -> np.ndarray:
    """Shot of each frame (in frame order): cumulative sum of PHALP's 0/1 ``shot`` flags."""
    flags = []
    for name, record in zip(names, records, strict=True):
        flag = record.get("shot")
        if isinstance(flag, (bool, np.bool_)) or flag not in (0, 1):
            raise InputError(path, f"frame {name!r}: 'shot' must be 0 or 1, got {flag!r}")
        flags.append(int(flag))
    return np.cumsum(flags)


def _tracked_entries(record: dict, name: str, path: Path) -> list[tuple[Any, int]]:
    """``(tid, entry index)`` of the tracks detected in this frame (SLAHMR: tid in tracked_ids)."""
    tids, tracked = record.get("tid"), record.get("tracked_ids")
    if not isinstance(tids, (list, tuple)) or not isinstance(tracked, (list, tuple)):
        raise InputError(path, f"frame {name!r}: 'tid' and 'tracked_ids' must be lists")
    classes = record.get("class_name")
    if classes is not None and len(classes) != len(tids):
        raise InputError(path, f"frame {name!r}: 'class_name' and 'tid' differ in length")
    detected = {_as_tid(t, name, path) for t in tracked}
    entries = [(_as_tid(tid, name, path), i) for i, tid in enumerate(tids)]
    person = [classes is None or _is_person(classes[i]) for i in range(len(tids))]
    return [(tid, i) for tid, i in entries if tid in detected and person[i]]


def _as_tid(tid: Any, name: str, path: Path) -> Any:
    if isinstance(tid, (int, np.integer)) and not isinstance(tid, (bool, np.bool_)):
        return int(tid)
    if isinstance(tid, str):
        return tid
    raise InputError(path, f"frame {name!r}: track id {tid!r} is not an integer")


def _tid_sort_key(tid: Any) -> tuple[int, int | str]:
    return (0, tid) if isinstance(tid, int) else (1, tid)


def _tid_name(tid: Any) -> str:
    return f"{tid:03d}" if isinstance(tid, int) else tid


def _is_person(value: Any) -> bool:
    if isinstance(value, str):
        return value == "person"
    try:
        return int(value) == PERSON_CLASS
    except (TypeError, ValueError):
        return False


def _keypoint_source(record: dict, i: int) -> str | None:
    extra = record.get("extra_data")
    try:
        value = extra[i]
    except (TypeError, IndexError, KeyError):
        value = None
    if isinstance(value, (np.ndarray, list, tuple)) and np.size(value) > 1:
        return "extra_data"
    for key in ("vitpose", "2d_joints"):
        if key in record:
            return key
    return None


def _vitpose_to_op25(values: np.ndarray, reader: _Reader, where: str) -> np.ndarray:
    """(25, 3) BODY_25-slot or (17, 3) COCO-17 ``[u, v, conf]`` -> (25, 3) BODY_25 slots."""
    if values.size == NUM_OP25 * 3:
        return values.reshape(NUM_OP25, 3)
    if values.size == 17 * 3:
        out = np.zeros((NUM_OP25, 3))
        out[list(COCO17_TO_OP25)] = values.reshape(17, 3)
        return out
    raise reader.fail(where, f"ViTPose keypoints have {values.size} values, expected 25x3 or 17x3")


def _joints_to_op25(
    values: np.ndarray, height: int, width: int, reader: _Reader, where: str
) -> np.ndarray:
    """PHALP's ``2d_joints`` (normalized to the padded square) -> (25, 3) pixels, confidence 1."""
    if values.size % 2 or values.size < 2 * NUM_OP25:
        raise reader.fail(
            where, f"'2d_joints' has {values.size} values, expected >= 50 (x, y per joint)"
        )
    # PHALP pads the image to a max(H, W) square (offsets rounded down) before projecting.
    side = max(height, width)
    offset = np.array([(side - width) // 2, (side - height) // 2], dtype=np.float64)
    uv = values.reshape(-1, 2)[:NUM_OP25] * side - offset
    # Imported here: slahmr_opt.body imports the input readers (body model files).
    from slahmr_opt.body.keypoints import adjust_hips

    left, right, mid = (torch.tensor(uv[s]) for s in OP25_HIPS)  # copies: uv changes below
    uv[OP25_HIPS[0]] = adjust_hips(left, right, mid).numpy()
    uv[OP25_HIPS[1]] = adjust_hips(right, left, mid).numpy()
    return np.concatenate([uv, np.ones((NUM_OP25, 1))], axis=1)


def _crop_camera_to_transl(
    cam: np.ndarray, center: np.ndarray, bbox: np.ndarray, height: int, width: int
) -> np.ndarray:
    """SLAHMR's full-image SMPL ``transl`` from the crop camera ``[s, tx, ty]`` (metres)."""
    focal = 0.5 * (height + width)
    box = max(bbox[2], bbox[3])
    tz = 2.0 * focal / (box * cam[0] + CAM_EPS)
    tx = cam[1] + tz / focal * (center[0] - width / 2)
    ty = cam[2] + tz / focal * (center[1] - height / 2)
    return np.array([tx, ty, tz])


def _stack(
    tracks: dict[Any, dict[int, _Detection]], tids: list[Any], num_frames: int
) -> dict[str, Any]:
    """(P, T, ...) arrays of keypoints, masks, boxes and guesses."""
    num_people = len(tids)
    kp2d = np.zeros((num_people, num_frames, NUM_OP25, 3))
    vis = np.zeros((num_people, num_frames), dtype=bool)
    bbox = np.zeros((num_people, num_frames, 4))
    guesses = [(p, t, d.guess) for p, tid in enumerate(tids) for t, d in tracks[tid].items()]
    for p, tid in enumerate(tids):
        for t, det in tracks[tid].items():
            kp2d[p, t], vis[p, t], bbox[p, t] = det.keypoints, True, det.bbox
    return {
        "kp2d": torch.as_tensor(kp2d, dtype=torch.float32),
        "vis_mask": torch.as_tensor(vis),
        "bbox": torch.as_tensor(bbox, dtype=torch.float32),
        "smpl_guess": _stack_guesses(guesses, num_people, num_frames),
    }


def _stack_guesses(
    guesses: list[tuple[int, int, Any]], num_people: int, num_frames: int
) -> SMPLGuess | None:
    present = [(p, t, g) for p, t, g in guesses if g is not None]
    if not present:
        return None
    orient = np.zeros((num_people, num_frames, 3))
    pose = np.zeros((num_people, num_frames, NUM_BODY_JOINTS, 3))
    betas = np.zeros((num_people, num_frames, present[0][2][2].size))
    transl = np.zeros((num_people, num_frames, 3))
    valid = np.zeros((num_people, num_frames), dtype=bool)
    for p, t, (o, b, s, tr) in present:
        orient[p, t], pose[p, t], betas[p, t], transl[p, t], valid[p, t] = o, b, s, tr, True
    return SMPLGuess.from_arrays(orient, pose, betas, transl, valid, REST_PELVIS["smpl"])


__all__ = ["read_phalp"]
