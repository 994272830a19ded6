"""SLAHMR's per-stage ``<stage>/<seq>_<iter:06d>_world_results.npz``: read, convert, continue from.

Layout (vye16/slahmr; ``slahmr/optim/base_scene.py`` ``get_optim_result``,
``slahmr/optim/params.py`` ``CameraParams.get_cameras``, ``slahmr/optim/moving_scene.py``
``get_optim_result``/``synchronize_preds``, ``slahmr/optim/output.py`` ``save_track_info``).
B people, T frames, one shared world; plain arrays (``np.savez``, no pickles):

=============  ============  ==================================================================
key            shape         meaning
=============  ============  ==================================================================
trans          (B, T, 3)     SMPL-H ``transl`` in the world, metres (world_scale applied)
root_orient    (B, T, 3)     world root orientation, axis-angle
pose_body      (B, T, 63)    21 body joints, axis-angle (VPoser-decoded)
betas          (B, 16)       SMPL-H neutral shape (``paths.smpl``: smplh/neutral/model.npz)
cam_R, cam_t   (B, T, 3, 3)  world-to-camera, repeated per person; ``cam_t`` has the world scale
               (B, T, 3)     applied (``get_extrinsics``: ``cam_t * world_scale``)
intrins        (4,)          ``[fx, fy, cx, cy]`` of frame 0 (``CameraParams.intrins``)
world_scale    (1, 1)        SLAM scale, when it was optimized
track_mask     (B, T)        motion_chunks only: frames of each track; the body keys are zero
                             outside (``synchronize_preds`` scatters each track's roll-out)
=============  ============  ==================================================================

(plus ``latent_pose``, and in motion_chunks ``latent_motion``, velocities, ``floor_plane``, which
are not read). In motion_chunks the body keys may have fewer frames than the cameras (T is the
latest track end); they are padded with empty frames.

Frames: frame t is image ``data_start + start_idx + t`` of the selected shot, where
``start_idx`` is the first frame any selected track is seen (SLAHMR crops to the tracked window,
as we do) and ``data_start`` is ``data.start_idx``. Both come from ``track_info.json``
(``{"tracks": {tid: {"index": b, "vis_mask": [...]}}, "meta": {"seq_interval": [s, e],
"data_interval": [ds, de]}}``, written next to the stage folders), which also gives the track ids
(``int`` of the track folder names: written back as ``%03d``) and the per-frame detections
(``vis_mask[s:e]``). For a single-shot video with ``data.start_idx = 0`` the image index is the
video frame. Without ``track_info.json`` the frame offset is unknown (``frame_offset`` argument).

Frame rate: not in the file; the run's ``.hydra/config.yaml`` (``data.frame_opts.fps``, the rate
frames were extracted at, else ``fps``) or the ``fps`` argument.

World: SLAHMR's, i.e. the DROID-SLAM world shifted by its first camera (``CameraData`` subtracts
``-cam_t[start] + noise``) and scaled by ``world_scale``; metric, OpenCV axes, not gravity-aligned.
``world_transform`` is the identity and ``floor_plane`` NaN in the converted result.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import check_finite, check_shape, load_json, load_npz
from slahmr_opt.inputs.initializers.common import (
    REST_PELVIS,
    ToolPerson,
    aa_to_rotmat,
    rotmat_to_aa,
)
from slahmr_opt.inputs.track_data import track_mask_from_vis

log = logging.getLogger(__name__)

SLAHMR_KEYS = ("trans", "root_orient", "pose_body", "betas", "cam_R", "cam_t", "intrins")


@dataclass
class SlahmrRun:
    """One SLAHMR ``world_results`` file with its track info, in SLAHMR's world.

    Attributes:
        path: the file.
        trans: (B, T, 3) SMPL-H ``transl``, world, metres.
        root_orient: (B, T, 3) world root orientation, axis-angle.
        pose_body: (B, T, 21, 3) body pose, axis-angle.
        betas: (B, 16) SMPL-H shape.
        cam_R: (T, 3, 3) world-to-camera rotations.
        cam_t: (T, 3) world-to-camera translations, metres.
        intrins: (4,) ``[fx, fy, cx, cy]``.
        world_scale: SLAHMR's SLAM scale, or None when it was not optimized.
        track_mask: (B, T) frames of each track.
        vis_mask: (B, T) frames with a detection (``track_mask`` without ``track_info.json``).
        track_ids: B track names.
        frame_offset: video frame of frame 0, or None when unknown.
        stage: the stage folder (``root_fit``, ``smooth_fit``, ``motion_chunks``, ...).
    """

    path: Path
    trans: np.ndarray
    root_orient: np.ndarray
    pose_body: np.ndarray
    betas: np.ndarray
    cam_R: np.ndarray
    cam_t: np.ndarray
    intrins: np.ndarray
    world_scale: float | None
    track_mask: np.ndarray
    vis_mask: np.ndarray
    track_ids: list[str]
    frame_offset: int | None
    stage: str


def is_slahmr_results(data: dict) -> bool:
    """True for SLAHMR's key layout (its body and camera keys, no ``joints``: ours has them)."""
    return all(k in data for k in SLAHMR_KEYS) and "joints" not in data


def load_slahmr_run(path: str | Path) -> SlahmrRun:
    """Read and check a SLAHMR ``world_results.npz`` and the ``track_info.json`` near it.

    Raises:
        InputError: a missing file or key, or shapes that disagree (names the file and key).
    """
    path = Path(path)
    data = load_npz(path, "SLAHMR world results")
    missing = [k for k in SLAHMR_KEYS if k not in data]
    if missing:
        raise InputError(path, f"not a SLAHMR world_results file: missing keys {missing}")
    dims: dict[str, int] = {}
    check_shape(data["trans"], ("B", "Tb", 3), path, "trans", dims)
    check_shape(data["root_orient"], ("B", "Tb", 3), path, "root_orient", dims)
    pose = data["pose_body"]
    if pose.ndim == 3:
        check_shape(pose, ("B", "Tb", 63), path, "pose_body", dims)
    else:
        check_shape(pose, ("B", "Tb", 21, 3), path, "pose_body", dims)
    check_shape(data["betas"], ("B", "nb"), path, "betas", dims)
    cam_R, cam_t = data["cam_R"], data["cam_t"]
    if cam_R.ndim == 4:  # (B, T, 3, 3) as saved: the same cameras for every person
        check_shape(cam_R, ("B", "T", 3, 3), path, "cam_R", dims)
        check_shape(cam_t, ("B", "T", 3), path, "cam_t", dims)
        cam_R, cam_t = cam_R[0], cam_t[0]
    check_shape(cam_R, ("T", 3, 3), path, "cam_R", dims)
    check_shape(cam_t, ("T", 3), path, "cam_t", dims)
    intrins = data["intrins"]
    if intrins.ndim not in (1, 2) or intrins.shape[-1] != 4 or intrins.size == 0:
        raise InputError(path, f"'intrins' has shape {intrins.shape}, expected (4,)")
    intrins = intrins.reshape(-1, 4)[0]
    B, Tb, T = dims["B"], dims["Tb"], dims["T"]
    if Tb > T:
        raise InputError(path, f"the bodies have {Tb} frames, the cameras {T}")
    for key in SLAHMR_KEYS:
        check_finite(data[key], path, key)
    track_mask = np.ones((B, Tb), bool)
    if "track_mask" in data:
        check_shape(data["track_mask"], ("B", "Tb"), path, "track_mask", dims)
        track_mask = data["track_mask"].astype(bool)
    pad = ((0, 0), (0, T - Tb))
    run = SlahmrRun(
        path=path,
        trans=np.pad(data["trans"].astype(np.float64), (*pad, (0, 0))),
        root_orient=np.pad(data["root_orient"].astype(np.float64), (*pad, (0, 0))),
        pose_body=np.pad(pose.reshape(B, Tb, 21, 3).astype(np.float64), (*pad, (0, 0), (0, 0))),
        betas=data["betas"].astype(np.float64),
        cam_R=cam_R.astype(np.float64),
        cam_t=cam_t.astype(np.float64),
        intrins=intrins.astype(np.float64),
        world_scale=float(data["world_scale"].reshape(-1)[0]) if "world_scale" in data else None,
        track_mask=np.pad(track_mask, pad),
        vis_mask=np.pad(track_mask, pad),
        track_ids=[f"{b:03d}" for b in range(B)],
        frame_offset=None,
        stage=path.parent.name,
    )
    _apply_track_info(run, "track_mask" in data)
    return run


def _find_near(path: Path, name: str) -> Path | None:
    for folder in (path.parent, path.parent.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def _apply_track_info(run: SlahmrRun, has_track_mask: bool) -> None:
    """Track ids, detections and frame offset from ``track_info.json`` (in place)."""
    info_path = _find_near(run.path, "track_info.json")
    if info_path is None:
        log.warning("%s: no track_info.json beside or above it: track ids %s by position, "
                    "frame offset unknown", run.path, run.track_ids)  # fmt: skip
        return
    info = load_json(info_path, "SLAHMR track info")
    try:
        tracks, meta = info["tracks"], info["meta"]
        start, stop = (int(v) for v in meta["seq_interval"])
        data_start = int(meta["data_interval"][0])
        rows = {
            int(t["index"]): (tid, np.asarray(t["vis_mask"], bool)) for tid, t in tracks.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(info_path, f"not SLAHMR's track_info layout ({exc!r})") from None
    B, T = run.track_mask.shape
    if sorted(rows) != list(range(B)):
        raise InputError(info_path, f"track indices {sorted(rows)}, the results have {B} people")
    if stop - start != T:
        raise InputError(info_path, f"seq_interval {start}..{stop} covers {stop - start} frames, "
                         f"the results {T}")  # fmt: skip
    vis = np.zeros((B, T), bool)
    for b, (tid, mask) in rows.items():
        if len(mask) < stop:
            raise InputError(info_path, f"track {tid}: vis_mask has {len(mask)} frames, fewer "
                             f"than seq_interval's end {stop}")  # fmt: skip
        vis[b] = mask[start:stop]
        run.track_ids[b] = f"{int(tid):03d}" if str(tid).isdigit() else str(tid)
    run.vis_mask = vis & run.track_mask if has_track_mask else vis
    if not has_track_mask:
        run.track_mask = track_mask_from_vis(torch.from_numpy(vis)).numpy()
    run.frame_offset = data_start + start


def slahmr_fps(path: Path, fps: float | None) -> float:
    """The frame rate: ``fps``, else the run's ``.hydra/config.yaml``; else ``InputError``."""
    if fps is not None:
        return float(fps)
    cfg_path = _find_near(path, ".hydra/config.yaml")
    if cfg_path is not None:
        try:
            cfg = yaml.safe_load(cfg_path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            cfg = {}
        data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
        opts = data.get("frame_opts") if isinstance(data.get("frame_opts"), dict) else {}
        for value in (opts.get("fps"), cfg.get("fps")):
            if isinstance(value, int | float) and value > 0:
                log.info("%s: fps %g from %s", path, value, cfg_path)
                return float(value)
    raise InputError(path, "SLAHMR results do not record the frame rate and no .hydra/config.yaml "
                     "gives it: pass fps (slahmr-opt eval --fps)")  # fmt: skip


def read_slahmr_results(
    path: str | Path,
    body: BodyConfig | None = None,
    fps: float | None = None,
    frame_offset: int | None = None,
) -> dict[str, np.ndarray]:
    """A SLAHMR ``world_results.npz`` in our ``results.npz`` layout (``io.results`` keys).

    Args:
        path: the SLAHMR file.
        body: the body model to pose it with: SLAHMR's SMPL-H (e.g. ``BodyConfig(model_path=
            ".../smplh/neutral/model.npz", model_type="smplh", num_betas=16)``) reproduces its
            joints exactly. None: the built-in body with zero betas (its shape space is not
            SMPL-H's), placed so that its pelvis is SLAHMR's pelvis: SLAHMR's pose and root
            trajectory, our bone lengths. The returned ``trans``/``betas`` are for this model.
        fps: frame rate (else from the run's ``.hydra/config.yaml``).
        frame_offset: video frame of frame 0; overrides ``track_info.json`` (default 0 without it).

    Raises:
        InputError: malformed files, or no frame rate.
    """
    run = load_slahmr_run(path)
    fps = slahmr_fps(run.path, fps)
    if frame_offset is None:
        frame_offset = run.frame_offset if run.frame_offset is not None else 0
    betas, trans, joints = _posed(run, body)
    P, T = run.track_mask.shape
    fx, fy, cx, cy = run.intrins
    static = np.allclose(run.cam_R, np.eye(3), atol=1e-6) and np.allclose(run.cam_t, run.cam_t[0])
    return {
        "trans": trans.astype(np.float32),
        "root_orient": run.root_orient.astype(np.float32),
        "pose_body": run.pose_body.reshape(P, T, 63).astype(np.float32),
        "betas": betas.astype(np.float32),
        "cam_R": np.broadcast_to(run.cam_R, (P, T, 3, 3)).astype(np.float32),
        "cam_t": np.broadcast_to(run.cam_t, (P, T, 3)).astype(np.float32),
        "intrins": np.tile(run.intrins, (T, 1)).astype(np.float32),
        "world_scale": np.array(
            [[np.nan if run.world_scale is None else run.world_scale]], dtype=np.float32
        ),  # fmt: skip
        "track_mask": run.track_mask,
        "vis_mask": run.vis_mask,
        "joints": joints.astype(np.float32),
        "track_ids": np.array(run.track_ids),
        "fps": np.array(fps, dtype=np.float64),
        "image_size": np.array([round(2 * cy), round(2 * cx)], dtype=np.int64),
        "is_static": np.array(static),
        "frame_offset": np.array(frame_offset, dtype=np.int64),
        "world_transform": np.eye(4, dtype=np.float32),
        "floor_plane": np.full(4, np.nan, dtype=np.float32),
    }


def _posed(run: SlahmrRun, body: BodyConfig | None):
    """Betas (P, B) and ``transl`` (P, T, 3) for the body model, and its joints (P, T, 24, 3)."""
    model = load_body_model(body or BodyConfig(), torch.float64)
    P = run.trans.shape[0]
    if body is None:
        log.warning("%s: posed with the built-in body (zero betas, SLAHMR's pelvis trajectory); "
                    "pass SLAHMR's SMPL-H model for its exact joints", run.path)  # fmt: skip
        betas = np.zeros((P, model.num_betas))
        zeros = torch.zeros(P, 3, dtype=torch.float64)
        rest = model(torch.from_numpy(betas), zeros, torch.zeros(P, 21, 3, dtype=torch.float64),
                     zeros).joints[:, 0].numpy()  # fmt: skip
        trans = run.trans + REST_PELVIS["smplh"] - rest[:, None]
    else:
        nb = model.num_betas
        if np.abs(run.betas[:, nb:]).max(initial=0.0) > 0:
            log.warning("%s: betas cut from %d to the body model's %d", run.path,
                        run.betas.shape[1], nb)  # fmt: skip
        betas = np.pad(run.betas[:, :nb], ((0, 0), (0, max(0, nb - run.betas.shape[1]))))
        trans = run.trans
    with torch.no_grad():
        joints = model(
            torch.from_numpy(betas)[:, None],
            torch.from_numpy(run.root_orient),
            torch.from_numpy(run.pose_body),
            torch.from_numpy(trans),
        ).joints.numpy()
    return betas, trans, joints


def slahmr_people(path: str | Path, frame_offset: int = 0) -> list[ToolPerson]:
    """SLAHMR's bodies as per-person camera-frame guesses (for ``--init slahmr:PATH``).

    With SLAHMR's world-to-camera ``(R, t)`` of each frame: ``orient_c = R R_root`` and
    ``pelvis_c = R (trans + J_pelvis) + t`` (``J_pelvis``: the SMPL-H rest pelvis). Only the
    frames of each track (``track_mask``) are returned.

    Args:
        path: the SLAHMR file.
        frame_offset: video frame of frame 0 when there is no ``track_info.json``.
    """
    run = load_slahmr_run(path)
    offset = run.frame_offset if run.frame_offset is not None else frame_offset
    R = run.cam_R
    people = []
    for b, tid in enumerate(run.track_ids):
        t = np.nonzero(run.track_mask[b])[0]
        if len(t) == 0:
            continue
        orient_c = rotmat_to_aa(R[t] @ aa_to_rotmat(run.root_orient[b, t]))
        pelvis_w = run.trans[b, t] + REST_PELVIS["smplh"]
        pelvis_c = np.einsum("tij,tj->ti", R[t], pelvis_w) + run.cam_t[t]
        people.append(
            ToolPerson(
                person_id=tid,
                frames=t + offset,
                global_orient_c=orient_c,
                body_pose=run.pose_body[b, t],
                betas=np.repeat(run.betas[b : b + 1], len(t), 0),
                pelvis_c=pelvis_c,
                intrins=np.tile(run.intrins, (len(t), 1)),
                model="smplh",
            )
        )
    return people
