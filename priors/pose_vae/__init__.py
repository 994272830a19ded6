"""Variational autoencoder prior over the SMPL body pose (``PoseVAE``), trained on fitted mocap."""

from slahmr_priors.pose_vae.model import PoseVAE

__all__ = ["PoseVAE"]
