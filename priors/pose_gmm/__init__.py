"""Gaussian-mixture prior over the SMPL body pose (``PoseGMM``), trained on fitted mocap."""

from slahmr_priors.pose_gmm.model import PoseGMM

__all__ = ["PoseGMM"]
