"""CVAE motion prior over transitions between consecutive frames (HuMoR's idea), trained on
fitted mocap: ``MotionCVAE`` and the body-to-state map ``states_from_body``."""

from slahmr_priors.motion_cvae.model import MotionCVAE
from slahmr_priors.motion_cvae.state import (
    STATE_DIM,
    Transitions,
    states_from_body,
    states_from_rotations,
)

__all__ = ["STATE_DIM", "MotionCVAE", "Transitions", "states_from_body", "states_from_rotations"]
