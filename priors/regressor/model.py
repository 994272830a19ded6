"""Temporal regressor: 2D keypoint sequences -> per-frame 3D body, facing, motion and contacts.

The idea is WHAM's (a motion encoder over 2D keypoint sequences, lifted to SMPL parameters, and a
trajectory head that uses the camera's angular velocity), written for this project as a
non-causal dilated temporal convolution network: offline jobs may look both ways in time, and
convolutions train quickly on a CPU. With the default widths the receptive field is 157 frames
(about 2.6 s either way at 30 fps).

Outputs per frame (``RegressorOutput``), all in the body model's (the built-in model's) terms:
root orientation in the camera frame and body pose as rotation matrices (6D representation on the
way), the up direction (against gravity) in the camera frame, the pelvis velocity in the body's
heading frame (gravity-aligned, turned with the body; m/s), four foot-contact probabilities
(left/right ankle, left/right toe base) and the shape (mean the per-frame values over a track).
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from slahmr_priors.regressor.features import NUM_FEATURES

SHIPPED = Path(__file__).resolve().with_name("regressor.pt")
NUM_POSE = 21
NUM_BETAS = 10
NUM_CONTACTS = 4
#: Output slices of the head, in order.
HEAD = {"root6": 6, "pose6": 6 * NUM_POSE, "up": 3, "vel": 3, "contact": NUM_CONTACTS,
        "betas": NUM_BETAS}  # fmt: skip


def rot6d_to_matrix(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two columns (Zhou et al., CVPR 2019)."""
    a, b = x[..., :3], x[..., 3:]
    c0 = nn.functional.normalize(a, dim=-1)
    c1 = nn.functional.normalize(b - (c0 * b).sum(-1, keepdim=True) * c0, dim=-1)
    c2 = torch.cross(c0, c1, dim=-1)
    return torch.stack([c0, c1, c2], -1)


@dataclass
class RegressorOutput:
    """Per-frame predictions (batch ``...``, T frames).

    Attributes:
        root_c: (..., T, 3, 3) root orientation, body to camera.
        pose: (..., T, 21, 3, 3) body joint rotations relative to their parents.
        up_c: (..., T, 3) unit up direction (against gravity) in the camera frame.
        vel_h: (..., T, 3) pelvis velocity in the heading frame (x left, y up, z forward), m/s.
        contact: (..., T, 4) contact probabilities: left/right ankle, left/right toe base.
        betas: (..., T, 10) shape.
    """

    root_c: Tensor
    pose: Tensor
    up_c: Tensor
    vel_h: Tensor
    contact: Tensor
    betas: Tensor


class _Block(nn.Module):
    """Residual block: dilated 3-tap convolution, GELU, 1x1 convolution, GroupNorm."""

    def __init__(self, width: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation,
                              padding_mode="replicate")  # fmt: skip
        self.mix = nn.Conv1d(width, width, 1)
        self.norm = nn.GroupNorm(8, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop(self.mix(nn.functional.gelu(self.norm(self.conv(x)))))


class Regressor(nn.Module):
    """Dilated temporal convolution network over ``features.make_features`` frames.

    Args:
        width: channels.
        dilations: one residual block per dilation.
        dropout: dropout inside the blocks (training only).
        feature_mean, feature_std: (NUM_FEATURES,) input normalisation (training statistics).
        metadata: training record (data, split, command, time, scores), saved with the weights.
    """

    def __init__(self, width: int = 192, dilations=(1, 2, 4, 8, 16, 32, 1, 2, 4, 8),
                 dropout: float = 0.1, feature_mean: Tensor | None = None,
                 feature_std: Tensor | None = None, metadata: dict | None = None):  # fmt: skip
        super().__init__()
        self.config = {"width": width, "dilations": list(dilations), "dropout": dropout}
        self.metadata = metadata or {}
        mean = torch.zeros(NUM_FEATURES) if feature_mean is None else feature_mean.float()
        std = torch.ones(NUM_FEATURES) if feature_std is None else feature_std.float()
        self.register_buffer("feature_mean", mean)
        self.register_buffer("feature_std", std)
        self.inp = nn.Conv1d(NUM_FEATURES, width, 1)
        self.blocks = nn.Sequential(*(_Block(width, d, dropout) for d in dilations))
        self.out = nn.Conv1d(width, sum(HEAD.values()), 1)
        self._start_at_rest()

    def _start_at_rest(self) -> None:
        """Start every rotation at the identity and the up direction at the camera's -y.

        From random 6D outputs, a joint can settle 180 degrees twisted about its bone with its
        child twisted back: the joint positions are right, so the positional loss holds the
        twist in place while the rotations are wrong. Starting at rest avoids that basin."""
        with torch.no_grad():
            self.out.weight.mul_(0.01)
            bias = torch.zeros(sum(HEAD.values()))
            eye6 = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
            bias[: HEAD["root6"] + HEAD["pose6"]] = eye6.repeat(1 + NUM_POSE)
            up = HEAD["root6"] + HEAD["pose6"]
            bias[up : up + 3] = torch.tensor([0.0, -1.0, 0.0])
            self.out.bias.copy_(bias)

    @property
    def receptive_field(self) -> int:
        return 1 + 2 * sum(self.config["dilations"])

    def raw(self, features: Tensor) -> Tensor:
        """(N, T, NUM_FEATURES) -> (N, T, sum(HEAD)) head outputs."""
        x = (features - self.feature_mean) / self.feature_std
        y = self.out(self.blocks(self.inp(x.transpose(1, 2))))
        return y.transpose(1, 2)

    def forward(self, features: Tensor) -> RegressorOutput:
        """Predictions for (N, T, NUM_FEATURES) features (any T >= 1)."""
        parts = dict(zip(HEAD, self.raw(features).split(list(HEAD.values()), -1), strict=True))
        N, T = features.shape[:2]
        return RegressorOutput(
            root_c=rot6d_to_matrix(parts["root6"]),
            pose=rot6d_to_matrix(parts["pose6"].reshape(N, T, NUM_POSE, 6)),
            up_c=nn.functional.normalize(parts["up"], dim=-1),
            vel_h=parts["vel"],
            contact=torch.sigmoid(parts["contact"]),
            betas=parts["betas"],
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Regressor":
        """Load a saved regressor; None loads the one shipped next to this module. The model
        comes back frozen (eval mode, no parameter gradients).

        Raises:
            ValueError: the file's weights do not match the architecture it names.
        """
        path = SHIPPED if path is None else Path(path)
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = cls(**blob["config"], metadata=json.loads(blob.get("metadata", "{}")))
        try:
            model.load_state_dict(blob["state_dict"])
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise ValueError(f"weights do not match the regressor architecture: {first}") from None
        return model.eval().requires_grad_(False)

    def save(self, path: str | Path) -> None:
        """Write the weights (float32), settings and metadata."""
        state = {k: v.detach().cpu().float() for k, v in self.state_dict().items()}
        blob = {"state_dict": state, "config": self.config, "metadata": json.dumps(self.metadata)}
        torch.save(blob, path)
