"""The bodies of a ``Result`` posed with a body model, and its cameras as arrays.

Exports and the renderer start here, from a ``Result`` in memory (``slahmr-opt run``) or read
back by ``io.results.read_result`` (``slahmr-opt export`` / ``render``). The body model is the
one named in the result's config (``body:`` section of ``Result.config_yaml``, the
``config.yaml`` written beside ``results.npz``) unless the caller passes a model file; a result
fitted with the user's own SMPL files is thus shown with those files.

Everything is in the result's world frame (``Result.world_transform``), metres, as numpy.
"""

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.io.results import metric_cameras
from slahmr_opt.types import Result

logger = logging.getLogger(__name__)


def body_config_of(result: Result, source: str | Path | None = None) -> BodyConfig:
    """The ``body:`` section of ``result.config_yaml`` (the defaults if there is none).

    Raises:
        InputError: the config cannot be read (names ``source``, the results file).
    """
    if not result.config_yaml.strip():
        logger.info("%s: no config beside it, using the default body model", source or "result")
        return BodyConfig()
    try:
        body = (yaml.safe_load(result.config_yaml) or {}).get("body") or {}
        return BodyConfig(**body)
    except (yaml.YAMLError, TypeError, AttributeError) as exc:
        raise InputError(source, f"cannot read the body: section of its config ({exc})") from None


def result_body_model(
    result: Result, body_path: str | None = None, source: str | Path | None = None
) -> BodyModel:
    """The body model ``result`` was fitted with (``body_config_of``), or the file
    ``body_path`` of the same type instead; checked against the result (``check_body_model``).

    Raises:
        InputError: the config cannot be read, or the betas do not fit the model.
    """
    cfg = body_config_of(result, source)
    if body_path is not None:
        cfg = replace(cfg, model_path=body_path)
    model = load_body_model(cfg)
    check_body_model(result, model, source)
    return model


def check_body_model(result: Result, body_model: BodyModel, source=None) -> None:
    """Raise ``InputError`` (naming ``source``) when the result has more betas than the model."""
    num = result.body.betas.shape[-1]
    if num > body_model.num_betas:
        raise InputError(
            source,
            f"betas have {num} coefficients, the body model only {body_model.num_betas}; "
            "pass the model the result was fitted with",
        )


def mesh_faces(body_model: BodyModel) -> np.ndarray:
    """(F, 3) int64 triangles of the body model's mesh."""
    return body_model.faces.numpy().astype(np.int64)


@torch.no_grad()
def posed(
    result: Result,
    body_model: BodyModel,
    frames: slice | np.ndarray = slice(None),
    vertices: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Every person of ``result`` posed on ``frames`` (result frame indices).

    Returns:
        ``(vertices (P, t, V, 3) or None, joints (P, t, 24, 3))`` as float32 numpy, metres.
    """
    body, dtype = result.body, body_model.dtype
    index = torch.as_tensor(frames) if isinstance(frames, np.ndarray) else frames

    def sel(x: torch.Tensor) -> torch.Tensor:
        return x[:, index].to(dtype)

    betas = body.betas.to(dtype).reshape(result.num_people, 1, -1)
    out = body_model(
        betas, sel(body.root_orient), sel(body.pose_body), sel(body.trans),
        return_vertices=vertices,
    )  # fmt: skip
    verts = None if out.vertices is None else out.vertices.float().numpy()
    return verts, out.joints.float().numpy()


@torch.no_grad()
def rest(
    result: Result, body_model: BodyModel, vertices: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Every person at rest: shape ``betas``, identity rotations, no translation.

    Returns:
        ``(vertices (P, V, 3) or None, joints (P, 24, 3))`` as float64 numpy, metres, in the
        body model's frame (``joints[:, 0] + trans`` is the pelvis in the world).
    """
    betas = result.body.betas.to(body_model.dtype).reshape(result.num_people, -1)
    out = body_model.rest_pose(betas, vertices)
    verts = None if out.vertices is None else out.vertices.double().numpy()
    return verts, out.joints.double().numpy()


def local_rotations(result: Result) -> np.ndarray:
    """(P, T, 22, 3, 3) float64: the root orientation then the 21 body joints' local
    rotations."""
    body = result.body
    aa = torch.cat([body.root_orient[:, :, None], body.pose_body], dim=2)
    return rotvec_to_rotmat(aa.double()).numpy()


def camera_arrays(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R (T, 3, 3), t (T, 3))``, metric, float64 numpy (the values
    ``results.npz`` stores)."""
    R, t = metric_cameras(result)
    return R.double().numpy(), t.double().numpy()


def camera_to_world(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world ``(R (T, 3, 3), centre (T, 3))`` in the result's world frame, metres."""
    R_w2c, t_w2c = camera_arrays(result)
    R_c2w = np.swapaxes(R_w2c, -1, -2)
    centre = -np.einsum("tij,tj->ti", R_c2w, t_w2c)
    return R_c2w, centre


def intrinsics(result: Result) -> np.ndarray:
    """(T, 4) ``[fx, fy, cx, cy]`` pixels, float64 numpy (the float32 values ``results.npz``
    stores)."""
    return result.cameras.intrins.float().double().numpy()
