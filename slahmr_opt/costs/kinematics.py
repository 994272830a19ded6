"""Body points from flat solver variables (shared by the data and smoothness terms)."""

from torch import Tensor

from slahmr_opt.body import BodyModel


def _forward(body: BodyModel, root_orient: Tensor, trans: Tensor, pose_body: Tensor, betas: Tensor):
    return body(
        betas=betas,
        global_orient=root_orient,
        body_pose=pose_body.reshape(*pose_body.shape[:-1], 21, 3),
        transl=trans,
    )


def world_keypoints(
    body: BodyModel,
    kp_format: str,
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
) -> Tensor:
    """(N, K, 3) keypoints in the world frame.

    Args:
        root_orient: (N, 3) axis-angle. trans: (N, 3) metres. pose_body: (N, 63) axis-angle.
        betas: (N, B).
    """
    return body.keypoints(_forward(body, root_orient, trans, pose_body, betas), kp_format)


def world_joints(
    body: BodyModel,
    num_joints: int,
    root_orient: Tensor,
    trans: Tensor,
    pose_body: Tensor,
    betas: Tensor,
) -> Tensor:
    """(N, J, 3) the first ``num_joints`` SMPL joints in the world frame. Args as above."""
    return _forward(body, root_orient, trans, pose_body, betas).joints[..., :num_joints, :]
