"""Data that crosses module boundaries: what was measured and what was estimated.

Conventions (DESIGN.md section 3): metres, pixels, seconds, radians; OpenCV camera axes (x right,
y down, z forward); extrinsics are world-to-camera; rotations here are axis-angle (``_aa``).
Dimension letters: P people, T frames, K keypoints, B shape coefficients.
All tensors are torch tensors on the CPU unless a caller moves them.
"""

import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10
    from backports.strenum import StrEnum

if TYPE_CHECKING:
    from slahmr_opt.history import LossHistory

KEYPOINT_FORMATS = ("coco17", "op25")


@dataclass
class Cameras:
    """Per-frame pinhole cameras of one video.

    Attributes:
        R_w2c: (T, 3, 3) world-to-camera rotations.
        t_w2c: (T, 3) world-to-camera translations, in SLAM units (unknown scale) unless
            ``alpha`` has been applied; the metric translation is ``alpha * t_w2c``.
        intrins: (T, 4) ``[fx, fy, cx, cy]`` in pixels of the original image.
        image_size: ``(height, width)`` in pixels.
        is_static: the camera does not move (world frame = camera frame, alpha is meaningless).
        alpha: metric scale of the SLAM translation (1.0 until estimated).
    """

    R_w2c: Tensor
    t_w2c: Tensor
    intrins: Tensor
    image_size: tuple[int, int]
    is_static: bool = False
    alpha: float = 1.0

    @property
    def num_frames(self) -> int:
        return self.R_w2c.shape[0]

    def slice(self, start: int, end: int) -> "Cameras":
        return replace(
            self,
            R_w2c=self.R_w2c[start:end],
            t_w2c=self.t_w2c[start:end],
            intrins=self.intrins[start:end],
        )


@dataclass
class ScenePoints:
    """Background points of the scene, as a SLAM system or the front end reconstructed them.

    Attributes:
        points: (N, 3) positions in the world frame of the cameras they come with, in SLAM units
            (the same unknown scale as ``Cameras.t_w2c``: metric positions are ``alpha * points``).
        frames: (N, 2) int64 first and last video frame that observed each point (inclusive), or
            None when unknown (every point may be used in every frame).
    """

    points: Tensor
    frames: Tensor | None = None

    @property
    def num_points(self) -> int:
        return self.points.shape[0]


@dataclass
class SMPLGuess:
    """Per-frame body estimates from a tracker or regressor, in each frame's camera coordinates.

    Attributes:
        global_orient_c: (P, T, 3) root orientation, camera frame, axis-angle.
        body_pose: (P, T, 21, 3) body joint rotations, axis-angle (SMPL-H body order).
        betas: (P, T, B) shape coefficients (B may differ from the model's; pad or cut).
        transl_c: (P, T, 3) SMPL ``transl`` parameter in camera coordinates, metres
            (PHALP/SLAHMR ``cam_trans``: the body is placed with ``transl`` applied after posing).
        valid: (P, T) bool, where a guess exists.
        rest_pelvis: (3,) pelvis of the guessing tool's body model at zero pose and mean shape,
            so that the guessed pelvis is at ``transl_c + rest_pelvis`` (SMPL's for PHALP); None:
            the guesses were made with the fitting body model itself.
    """

    global_orient_c: Tensor
    body_pose: Tensor
    betas: Tensor
    transl_c: Tensor
    valid: Tensor
    rest_pelvis: Tensor | None = None

    @classmethod
    def from_arrays(cls, orient, pose, betas, transl, valid, rest_pelvis=None) -> "SMPLGuess":
        """A guess from array-likes in the field order (float32 tensors, bool ``valid``)."""

        def f32(x):
            return torch.as_tensor(x, dtype=torch.float32)

        rest = None if rest_pelvis is None else f32(rest_pelvis)
        return cls(f32(orient), f32(pose), f32(betas), f32(transl), torch.as_tensor(valid), rest)


@dataclass
class Observations:
    """Everything measured about one video: person tracks and cameras.

    Attributes:
        kp2d: (P, T, K, 3) detected keypoints ``[u, v, confidence]`` in pixels; confidence 0
            where a keypoint (or the whole person) was not detected.
        kp_format: the keypoint layout of ``kp2d``: one of ``KEYPOINT_FORMATS``.
        track_mask: (P, T) bool, frames between a person's first and last detection.
        vis_mask: (P, T) bool, frames where the person was detected (subset of ``track_mask``).
        cameras: the per-frame cameras (SLAM trajectory or static).
        fps: frames per second of the video (read from the input, never assumed).
        track_ids: P names of the tracks, as found in the input.
        bbox: (P, T, 4) ``[x0, y0, w, h]`` boxes in pixels, or None.
        smpl_guess: per-frame body guesses from the tracker, or None.
        points: background scene points in the cameras' SLAM world, or None.
        sources: input files these observations were read from (for messages and provenance).
        frame_offset: video frame index of frame 0 (readers crop the input to the tracked
            window, so frame ``t`` here is video frame ``frame_offset + t``).
    """

    kp2d: Tensor
    kp_format: str
    track_mask: Tensor
    vis_mask: Tensor
    cameras: Cameras
    fps: float
    track_ids: list[str]
    bbox: Tensor | None = None
    smpl_guess: SMPLGuess | None = None
    points: ScenePoints | None = None
    sources: dict[str, str] = field(default_factory=dict)
    frame_offset: int = 0

    @property
    def num_people(self) -> int:
        return self.kp2d.shape[0]

    @property
    def num_frames(self) -> int:
        return self.kp2d.shape[1]


@dataclass
class BodyParams:
    """Body parameters of P people over T frames in the world frame.

    Attributes:
        root_orient: (P, T, 3) root (pelvis) orientation in the world frame, axis-angle.
        trans: (P, T, 3) SMPL ``transl`` parameter in the world frame, metres.
        pose_body: (P, T, 21, 3) body joint rotations relative to their parents, axis-angle.
        betas: (P, B) shape coefficients, one per person.
    """

    root_orient: Tensor
    trans: Tensor
    pose_body: Tensor
    betas: Tensor

    def as_tuple(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.root_orient, self.trans, self.pose_body, self.betas

    def to(self, dtype: torch.dtype) -> "BodyParams":
        return BodyParams(*(t.to(dtype) for t in self.as_tuple()))


@dataclass
class Floor:
    """The estimated floor: the plane ``normal . x = offset`` in the solve world (the SLAM
    world, metric).

    Attributes:
        normal: (3,) unit normal, pointing up.
        offset: distance of the plane from the world origin along ``normal``, metres.
    """

    normal: Tensor
    offset: float

    def as_plane(self) -> Tensor:
        """(4,) float32 ``[nx, ny, nz, d]`` (``results.npz``'s ``floor_plane``)."""
        offset = torch.tensor([self.offset], dtype=torch.float64)
        return torch.cat([self.normal.double().reshape(3), offset]).float()

    @classmethod
    def from_plane(cls, plane: Tensor | None) -> "Floor | None":
        """The floor of a (4,) ``[n, d]`` plane; None for None or a NaN plane (no floor)."""
        if plane is None:
            return None
        plane = torch.as_tensor(plane).reshape(4)
        if not bool(torch.isfinite(plane).all()):
            return None
        return cls(normal=plane[:3].clone(), offset=float(plane[3]))


class StageStatus(StrEnum):
    """How a stage ended (``stages.runner.StageResult.status``)."""

    CONVERGED = "converged"
    """The stopping rule was met (LM: relative decrease below tolerance; L-BFGS likewise)."""
    MAX_ITERATIONS = "max_iterations"
    """The iteration budget ran out first."""
    FAILED = "failed"
    """The linear solver failed or the loss became NaN (``solve`` raises ``SolveError``)."""


@dataclass
class StageSummary:
    """What one stage of a solve did (a row of ``stages.json``).

    Attributes:
        name: stage name.
        solver: ``lm``, ``lbfgs`` or ``adam``.
        status: how it ended.
        message: the solver's detail (final LM damping, loss evaluations, the failure).
        iterations: iterations performed.
        seconds: wall time.
        initial_loss, final_loss: total weighted loss before and after.
        people: motion stages under the evidence guard: one row per person (``track``,
            ``kp2d_start``, ``kp2d_end``, ``kp2d_rms_ratio``, ``prior_weight_factor``,
            ``prior_energy``, ``reset``, ``windows_capped``, ``dominated``), else None.
        camera_scale: the camera-scale estimate made after this stage (``init.scale_after``:
            ``cue`` and its measurements), else None.
    """

    name: str
    solver: str
    status: StageStatus
    message: str
    iterations: int
    seconds: float
    initial_loss: float
    final_loss: float
    people: list[dict] | None = None
    camera_scale: dict | None = None

    def to_dict(self) -> dict:
        """The ``stages.json`` row: plain JSON types, ``people`` and ``camera_scale`` only
        when set."""
        row = {
            "name": self.name,
            "solver": self.solver,
            "status": str(self.status),
            "message": self.message,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
        }
        if self.people is not None:
            row["people"] = self.people
        if self.camera_scale is not None:
            row["camera_scale"] = self.camera_scale
        return row

    @classmethod
    def from_dict(cls, row: dict) -> "StageSummary":
        """Inverse of ``to_dict`` (a row of ``stages.json``).

        Raises:
            KeyError: a required key is missing; ValueError: an unknown status.
        """
        return cls(
            name=str(row["name"]),
            solver=str(row["solver"]),
            status=StageStatus(row["status"]),
            message=str(row["message"]),
            iterations=int(row["iterations"]),
            seconds=float(row["seconds"]),
            initial_loss=float(row["initial_loss"]),
            final_loss=float(row["final_loss"]),
            people=row.get("people"),
            camera_scale=row.get("camera_scale"),
        )


@dataclass
class Result:
    """Everything a solve estimated for one video.

    Attributes:
        body: world-frame bodies (P, T, ...); frames outside ``track_mask`` are not estimates.
        cameras: the cameras with the estimated metric scale in ``cameras.alpha``.
        track_mask: (P, T) where each person exists.
        vis_mask: (P, T) where each person was detected.
        track_ids: P track names.
        fps: frame rate.
        history: the loss of every term at every iteration of every stage.
        stages: one ``StageSummary`` per stage, in order.
        config_yaml: the resolved config ("" if unknown).
        joints: (P, T, 24, 3) world joints of the final bodies, metres.
        frame_offset: video frame index of frame 0 (``Observations.frame_offset``).
        floor: the estimated floor in the solve world, or None if none was estimated.
        world_transform: (4, 4) rigid transform from the solve world to the frame ``body``,
            ``cameras`` and ``joints`` are given in (``x_out = R x + t``): the gravity-aligned
            frame (y up, floor at y = 0) or the identity (``gravity_aligned``).
        statures: (P,) standing height of each fitted body, metres (``BodyModel.stature``).
        scale_observed: False for a static camera or one that does not translate measurably
            (``init.scale.scale_observable``): ``cameras.alpha`` then carries no metric meaning
            and ``results.npz`` reports ``world_scale`` as NaN.
        body_model: the body model it was fitted with (``body.body_model_record``: ``type``,
            ``gender``, ``num_betas``, ``file``, ``sha256``, ``builtin``); empty if unknown.
    """

    body: BodyParams
    cameras: Cameras
    track_mask: Tensor
    vis_mask: Tensor
    track_ids: list[str]
    fps: float
    history: "LossHistory"
    stages: list[StageSummary]
    config_yaml: str
    joints: Tensor | None = None
    frame_offset: int = 0
    floor: Floor | None = None
    world_transform: Tensor = field(default_factory=lambda: torch.eye(4))
    statures: Tensor | None = None
    scale_observed: bool = True
    body_model: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.world_transform is None:
            self.world_transform = torch.eye(4)

    @property
    def num_people(self) -> int:
        return self.track_mask.shape[0]

    @property
    def num_frames(self) -> int:
        return self.track_mask.shape[1]

    @property
    def gravity_aligned(self) -> bool:
        """Whether the output frame is the gravity-aligned one (``world_transform`` is not the
        identity: y up, the floor at y = 0), not the SLAM world (OpenCV axes, y down)."""
        eye = torch.eye(4, dtype=torch.float64)
        return not torch.allclose(self.world_transform.double(), eye, rtol=1e-5, atol=1e-7)
