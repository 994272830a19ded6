"""Posed meshes of a ``results.npz``: the body model it was fitted with, vertices, joints, cameras.

The export and render commands start here. The body model is the one named in the
``config.yaml`` written next to ``results.npz`` (``body:`` section), unless the caller passes a
model file; a result fitted with the user's own SMPL files is thus shown with those files.
"""

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from pytorch3d.transforms import axis_angle_to_matrix

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.io.results import read_result

logger = logging.getLogger(__name__)


@dataclass
class ResultBodies:
    """A fitted result, ready to draw or export (world frame of ``results.npz``).

    Attributes:
        data: the raw ``results.npz`` arrays.
        body_model: the body model the result was fitted with.
        faces: (F, 3) int mesh triangles.
        track_mask: (P, T) bool, frames where each person exists.
        cam_R_w2c: (T, 3, 3) world-to-camera rotations.
        cam_t_w2c: (T, 3) world-to-camera translations, metres.
        intrins: (T, 4) ``[fx, fy, cx, cy]`` in pixels.
        image_size: ``(height, width)`` in pixels.
        fps: frames per second.
        frame_offset: video frame index of result frame 0.
        track_ids: P track names.
    """

    data: dict[str, np.ndarray]
    body_model: BodyModel
    faces: np.ndarray
    track_mask: np.ndarray
    cam_R_w2c: np.ndarray
    cam_t_w2c: np.ndarray
    intrins: np.ndarray
    image_size: tuple[int, int]
    fps: float
    frame_offset: int
    track_ids: list[str]

    @property
    def num_people(self) -> int:
        return self.track_mask.shape[0]

    @property
    def num_frames(self) -> int:
        return self.track_mask.shape[1]

    def cam_c2w(self) -> tuple[np.ndarray, np.ndarray]:
        """Camera-to-world ``(R (T, 3, 3), centre (T, 3))`` in the result's world frame."""
        R_c2w = np.swapaxes(self.cam_R_w2c, -1, -2)
        centre = -np.einsum("tij,tj->ti", R_c2w, self.cam_t_w2c)
        return R_c2w, centre

    @torch.no_grad()
    def posed(self, frames: slice | np.ndarray = slice(None), vertices: bool = True):
        """Pose every person on ``frames``.

        Returns:
            ``(vertices (P, t, V, 3) or None, joints (P, t, 24, 3))`` as float32 numpy, metres.
        """
        d = self.data
        P = self.num_people
        dtype = self.body_model.dtype

        def sel(key: str) -> torch.Tensor:
            return torch.as_tensor(np.asarray(d[key])[:, frames], dtype=dtype)

        pose = sel("pose_body")
        pose = pose.reshape(*pose.shape[:2], 21, 3)
        betas = torch.as_tensor(d["betas"], dtype=dtype).reshape(P, 1, -1)
        out = self.body_model(
            betas, sel("root_orient"), pose, sel("trans"), return_vertices=vertices
        )
        verts = None if out.vertices is None else out.vertices.float().numpy()
        return verts, out.joints.float().numpy()

    @torch.no_grad()
    def rest(self, vertices: bool = True):
        """Every person at rest: shape ``betas``, identity rotations, no translation.

        Returns:
            ``(vertices (P, V, 3) or None, joints (P, 24, 3))`` as float64 numpy, metres, in
            the body model's frame (``joints[:, 0] + trans`` is the pelvis in the world).
        """
        betas = torch.as_tensor(self.data["betas"], dtype=self.body_model.dtype)
        out = self.body_model.rest_pose(betas.reshape(self.num_people, -1), vertices)
        verts = None if out.vertices is None else out.vertices.double().numpy()
        return verts, out.joints.double().numpy()

    def local_rotations(self) -> np.ndarray:
        """(P, T, 22, 3, 3) root orientation then the 21 body joints' local rotations."""
        d = self.data
        P, T = self.track_mask.shape
        aa = np.concatenate(
            [np.asarray(d["root_orient"]).reshape(P, T, 1, 3),
             np.asarray(d["pose_body"]).reshape(P, T, 21, 3)], axis=2,
        )  # fmt: skip
        return axis_angle_to_matrix(torch.as_tensor(aa, dtype=torch.float64)).numpy()


def body_config_next_to(results_path: Path) -> BodyConfig:
    """The ``body:`` section of the ``config.yaml`` beside ``results_path`` (defaults if none)."""
    cfg_path = results_path.parent / "config.yaml"
    if not cfg_path.is_file():
        logger.info("%s: no config.yaml beside it, using the default body model", results_path)
        return BodyConfig()
    try:
        body = (yaml.safe_load(cfg_path.read_text()) or {}).get("body") or {}
        return BodyConfig(**body)
    except (yaml.YAMLError, TypeError, AttributeError) as exc:
        raise InputError(cfg_path, f"cannot read its body: section ({exc})") from None


def load_result_bodies(
    results_path: str | Path, body_model: BodyModel | None = None, body_path: str | None = None
) -> ResultBodies:
    """Read ``results.npz`` and the body model it was fitted with.

    Args:
        results_path: a ``results.npz`` written by ``slahmr-opt fit``.
        body_model: use this model (tests pass small synthetic ones).
        body_path: use this model file instead of the one in ``config.yaml`` (same type).

    Raises:
        InputError: the file is missing, lacks keys, or its betas do not fit the body model.
    """
    path = Path(results_path)
    data = read_result(path)
    if body_model is None:
        cfg = body_config_next_to(path)
        if body_path is not None:
            cfg = replace(cfg, model_path=body_path)
        body_model = load_body_model(cfg)
    P, T = np.asarray(data["trans"]).shape[:2]
    if np.asarray(data["betas"]).shape[-1] > body_model.num_betas:
        raise InputError(
            path,
            f"betas have {data['betas'].shape[-1]} coefficients, the body model only "
            f"{body_model.num_betas}; pass the model the result was fitted with",
        )
    mask = data.get("track_mask", np.ones((P, T), dtype=bool)).astype(bool)
    cam_R = np.asarray(data.get("cam_R", np.broadcast_to(np.eye(3), (P, T, 3, 3))))
    cam_t = np.asarray(data.get("cam_t", np.zeros((P, T, 3))))
    intrins = np.asarray(data.get("intrins", np.zeros((T, 4))), dtype=np.float64)
    if intrins.ndim == 1:
        intrins = np.broadcast_to(intrins, (T, 4))
    size = tuple(int(s) for s in data.get("image_size", _size_from_intrins(intrins)))
    return ResultBodies(
        data=data,
        body_model=body_model,
        faces=body_model.faces.numpy().astype(np.int64),
        track_mask=mask,
        cam_R_w2c=cam_R[0].astype(np.float64),
        cam_t_w2c=cam_t[0].astype(np.float64),
        intrins=intrins,
        image_size=size,
        fps=float(data.get("fps", 30.0)),
        frame_offset=int(data.get("frame_offset", 0)),
        track_ids=[str(s) for s in data.get("track_ids", [str(p) for p in range(P)])],
    )


def _size_from_intrins(intrins: np.ndarray) -> tuple[int, int]:
    """SLAHMR's default principal point is the image centre: ``(H, W) = 2 (cy, cx)``."""
    return int(round(2 * intrins[0, 3])), int(round(2 * intrins[0, 2]))
