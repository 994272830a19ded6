"""Compare a ``results.npz`` with ground truth.

Ground-truth file (``gt.npz``), in any world frame (the world metrics align by similarity):

============  ==============  =================================================
key           shape           meaning
============  ==============  =================================================
joints        (P, T, 24, 3)   world joints of the true bodies, metres
valid         (P, T)          frames with ground truth
track_ids     (P,)            names matching the tracks' ids
cam_R         (T, 3, 3)       true world-to-camera rotation
cam_t         (T, 3)          true world-to-camera translation, metres
feet          (P, T, 4, 3)    world foot points (left big toe, left heel, right big toe,
                              right heel), metres (optional, see below)
trans         (P, T, 3)       true SMPL ``transl`` (optional, see below)
root_orient   (P, T, 3)       true root orientation, axis-angle (optional)
pose_body     (P, T, 63)      true body pose, axis-angle (optional)
betas         (P, B)          true shape, built-in body model (optional)
alpha         ()              true metres per SLAM translation unit (optional)
============  ==============  =================================================

Foot points and vertices of the truth come from ``feet`` and from the body parameters
(``trans``, ``root_orient``, ``pose_body``, ``betas``) posed with the built-in body model; one of
the two must be given for foot sliding, the parameters for PVE. The prediction's foot points and
vertices are posed from its body parameters with the body model of its ``config.yaml`` (``body``
section; the built-in model when there is no config).

Frame ``t`` of the ground truth is video frame ``t``; the result's ``frame_offset`` maps its
frames into the video.

SLAHMR's own ``<stage>/<seq>_<iter>_world_results.npz`` is accepted as a prediction too: it is
converted by ``inputs.initializers.slahmr_results.read_slahmr_results`` (frame offset and track
ids from the ``track_info.json`` of its run, frame rate from its ``.hydra/config.yaml`` or
``fps=``; posed with SLAHMR's SMPL-H when ``slahmr_body`` points at it, else with the built-in body
on SLAHMR's pelvis trajectory). Its frame ``t`` is image ``data_start + start_idx + t`` of the
shot SLAHMR read, which is video frame ``t + frame_offset`` for a single-shot video.
"""

from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.eval.metrics import (
    accel_errors,
    chunked_world_errors,
    facing_errors,
    foot_sliding,
    hip_centre,
    jitter,
    mpjpe_errors,
    pa_errors,
    pve_errors,
    rte_errors,
    summarize,
    to_camera,
)
from slahmr_opt.files.checks import check_finite, load_npz
from slahmr_opt.inputs.initializers.slahmr_results import is_slahmr_results, read_slahmr_results
from slahmr_opt.io.results import check_result_arrays, read_result_arrays

FOOT_POINTS = (5, 7, 8, 10)
"""Left big toe, left heel, right big toe, right heel in ``KEYPOINT_VERTEX_NAMES`` order (for
SMPL the field's vertices 3216, 3387, 6617, 6787)."""
GT_PARAMS = ("trans", "root_orient", "pose_body", "betas")
PRED_KEYS = ("joints", "cam_R", "cam_t", "track_mask", "track_ids", "fps")

METRIC_UNITS = {
    "w_mpjpe100": "mm",
    "wa_mpjpe100": "mm",
    "rte": "%",
    "jitter": "10 m/s^3",
    "foot_sliding": "mm",
    "pa_mpjpe": "mm",
    "mpjpe": "mm",
    "pve": "mm",
    "accel_error": "m/s^2",
    "facing_off45": "%",
}
"""The metrics ``evaluate_result`` returns, in order, with their units."""


def _require(data: dict, keys, path: Path, what: str) -> None:
    for key in keys:
        if key not in data:
            raise InputError(path, f"{what} has no {key!r} key")


def read_ground_truth(path: str | Path) -> dict[str, np.ndarray]:
    """Load and check ``gt.npz`` (see the module docstring)."""
    path = Path(path)
    gt = load_npz(path, "ground-truth file")
    _require(gt, ("joints", "valid", "track_ids", "cam_R", "cam_t"), path, "ground-truth file")
    joints = gt["joints"]
    if joints.ndim != 4 or joints.shape[2:] != (24, 3):
        raise InputError(path, f"joints must be (P, T, 24, 3), got {joints.shape}")
    P, T = joints.shape[:2]
    expected = {"valid": (P, T), "cam_R": (T, 3, 3), "cam_t": (T, 3), "feet": (P, T, 4, 3)}
    for key, shape in expected.items():
        if key in gt and gt[key].shape != shape:
            raise InputError(path, f"{key} must be {shape} (joints are {joints.shape}), got "
                             f"{gt[key].shape}")  # fmt: skip
    if "feet" not in gt and not all(k in gt for k in GT_PARAMS):
        missing = [k for k in GT_PARAMS if k not in gt]
        raise InputError(path, f"has no 'feet' key and no body parameters {missing}")
    valid = gt["valid"].astype(bool)
    for key in ("cam_R", "cam_t", "betas"):
        if key in gt:
            check_finite(gt[key], path, key)
    for key in ("joints", "feet", "trans", "root_orient", "pose_body"):
        if key in gt and gt[key].shape[:2] == (P, T):  # NaN is allowed where the truth is not valid
            check_finite(gt[key][valid], path, key)
    return gt


def body_config_of(pred_path: str | Path) -> BodyConfig:
    """The body model settings of a result: ``body`` in its ``config.yaml``, else the default."""
    cfg_path = Path(pred_path).with_name("config.yaml")
    if not cfg_path.is_file():
        return BodyConfig()
    body = (yaml.safe_load(cfg_path.read_text()) or {}).get("body") or {}
    known = {f.name for f in fields(BodyConfig)}
    return BodyConfig(**{k: v for k, v in body.items() if k in known})


def pose_bodies(model: BodyModel, data: dict, path: Path, vertices: bool):
    """Foot points (P, T, 4, 3) and vertices (P, T, V, 3) or None from body parameters."""
    betas = np.asarray(data["betas"])
    if betas.shape[-1] > model.num_betas:
        raise InputError(path, f"betas has {betas.shape[-1]} coefficients, the body model "
                         f"{model.num_betas}")  # fmt: skip
    P, T = data["trans"].shape[:2]

    def t(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float64))

    with torch.no_grad():
        out = model(
            t(betas)[:, None],
            t(data["root_orient"]),
            t(data["pose_body"]).reshape(P, T, 21, 3),
            t(data["trans"]),
            return_vertices=vertices,
        )
    feet = out.keypoint_vertices[..., list(FOOT_POINTS), :].double().numpy()
    return feet, None if out.vertices is None else out.vertices.double().numpy()


def _rotmats(aa: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(aa, dtype=np.float64).reshape(-1, 3)).as_matrix()


def _check_prediction(pred: dict, path: Path) -> None:
    _require(pred, PRED_KEYS, path, "results file")
    P, T = pred["joints"].shape[:2]
    for key, shape in {"cam_R": (P, T, 3, 3), "cam_t": (P, T, 3), "track_mask": (P, T)}.items():
        if pred[key].shape != shape:
            raise InputError(path, f"{key} must be {shape} (joints are {pred['joints'].shape}), "
                             f"got {pred[key].shape}")  # fmt: skip


def load_prediction(
    pred_path: Path,
    slahmr_body: BodyConfig | None = None,
    fps: float | None = None,
    frame_offset: int | None = None,
) -> tuple[dict, BodyConfig]:
    """A prediction in the ``results.npz`` layout and the body model its parameters are for.

    Our ``results.npz`` is read as is (``slahmr_body``, ``fps`` and ``frame_offset`` are ignored);
    a SLAHMR ``world_results.npz`` is converted with them (see the module docstring).
    """
    pred = read_result_arrays(pred_path)
    if not is_slahmr_results(pred):
        check_result_arrays(pred, pred_path)
        return pred, body_config_of(pred_path)
    pred = read_slahmr_results(pred_path, slahmr_body, fps=fps, frame_offset=frame_offset)
    return pred, slahmr_body or BodyConfig()


def evaluate_result(
    pred_path: str | Path,
    gt_path: str | Path,
    slahmr_body: BodyConfig | None = None,
    fps: float | None = None,
    frame_offset: int | None = None,
) -> dict[str, float]:
    """Frame-weighted metrics over every person and valid frame of the prediction.

    Args:
        pred_path: our ``results.npz`` or SLAHMR's ``world_results.npz``.
        gt_path: ground truth (see the module docstring).
        slahmr_body, fps, frame_offset: SLAHMR predictions only: SLAHMR's SMPL-H model, the
            frame rate and the video frame of its frame 0 (see ``load_prediction``).

    Returns:
        The ``METRIC_UNITS`` keys (``pve`` is NaN when the truth has no body parameters or the
        meshes differ), ``frames``, and ``alpha`` / ``alpha_true`` (estimated and true camera
        scale; NaN if unknown).
    Raises:
        InputError: a missing key, shapes or frame counts that disagree (names file and key).
    """
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    pred, pred_body = load_prediction(pred_path, slahmr_body, fps, frame_offset)
    gt = read_ground_truth(gt_path)
    _check_prediction(pred, pred_path)
    offset = int(pred.get("frame_offset", 0))
    fps = float(pred["fps"])
    T = pred["joints"].shape[1]
    if offset + T > gt["joints"].shape[1]:
        raise InputError(gt_path, f"joints has {gt['joints'].shape[1]} frames, the result covers "
                         f"frames {offset}..{offset + T - 1}")  # fmt: skip
    pred_feet, pred_verts = pose_bodies(
        load_body_model(pred_body, torch.float64), pred, pred_path, True
    )
    gt_feet, gt_verts = gt.get("feet"), None
    if all(k in gt for k in GT_PARAMS):
        nb = max(gt["betas"].shape[-1], 10)
        model = load_body_model(BodyConfig(num_betas=nb), torch.float64)
        feet, gt_verts = pose_bodies(model, gt, gt_path, True)
        gt_feet = feet if gt_feet is None else gt_feet
    if gt_verts is not None and gt_verts.shape[-2] != pred_verts.shape[-2]:
        gt_verts = None

    gt_ids = [str(s) for s in gt["track_ids"]]
    per_person, frames = [], 0
    frames_of = slice(offset, offset + T)
    for p, tid in enumerate(str(s) for s in pred["track_ids"]):
        if tid not in gt_ids:
            raise InputError(gt_path, f"no ground truth for track {tid!r} (has {gt_ids})")
        g = gt_ids.index(tid)
        valid = pred["track_mask"][p].astype(bool) & gt["valid"][g, frames_of].astype(bool)
        if not valid.any():
            continue
        pj = pred["joints"][p][valid].astype(np.float64)
        gj = gt["joints"][g, frames_of][valid].astype(np.float64)
        pose_p = pred["cam_R"][p][valid], pred["cam_t"][p][valid]
        pose_g = gt["cam_R"][frames_of][valid], gt["cam_t"][frames_of][valid]
        pj_c, gj_c = to_camera(pj, *pose_p), to_camera(gj, *pose_g)
        errs = {
            "w_mpjpe100": chunked_world_errors(pj, gj, first_two=True),
            "wa_mpjpe100": chunked_world_errors(pj, gj, first_two=False),
            "rte": rte_errors(pj[:, 0], gj[:, 0]),
            "jitter": jitter(pj, fps),
            "foot_sliding": foot_sliding(pred_feet[p][valid], gt_feet[g, frames_of][valid]),
            "pa_mpjpe": pa_errors(pj_c, gj_c),
            "mpjpe": mpjpe_errors(pj_c, gj_c),
            "pve": np.zeros(0),
            # As the field: camera-frame joints after the hip offset, so root motion is excluded.
            "accel_error": accel_errors(pj_c - hip_centre(pj_c), gj_c - hip_centre(gj_c), fps),
        }
        errs["facing_off45"] = np.zeros(0)
        if "root_orient" in gt and "root_orient" in pred:
            R_p = pose_p[0] @ _rotmats(pred["root_orient"][p][valid])
            R_g = pose_g[0] @ _rotmats(gt["root_orient"][g, frames_of][valid])
            errs["facing_off45"] = facing_errors(R_p, R_g)
        if gt_verts is not None:
            pv_c = to_camera(pred_verts[p][valid], *pose_p)
            gv_c = to_camera(gt_verts[g, frames_of][valid], *pose_g)
            errs["pve"] = pve_errors(pv_c, gv_c, pj_c, gj_c)
        per_person.append(errs)
        frames += int(valid.sum())
    if not per_person:
        raise InputError(gt_path, "no frame has both a prediction and ground truth")
    metrics: dict[str, float] = summarize(per_person)
    metrics["frames"] = frames
    metrics["alpha"] = (
        float(pred["world_scale"].reshape(-1)[0]) if "world_scale" in pred else float("nan")
    )
    metrics["alpha_true"] = float(gt["alpha"]) if "alpha" in gt else float("nan")
    return metrics
