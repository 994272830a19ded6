"""The floor-contact rule of the motion-prior training data (numpy only; shipped: the solver's
floor initialization applies the same rule).

A joint of ``CONTACT_JOINTS`` touches the floor where its height is below its threshold and its
speed below ``CONTACT_SPEED`` (HuMoR uses 0.005 m per frame at 30 fps and 4 cm / 8 cm for SMPL
toes / ankles; ours are raised by the built-in body's joint heights over the sole: toe base
4.2 cm, ankle 11.7 cm at rest).
"""

import numpy as np

#: SMPL joints with contact labels: left/right ankle, foot (toe base), wrist.
CONTACT_JOINTS = (7, 8, 10, 11, 20, 21)
#: Height (m above the floor) below which each of ``CONTACT_JOINTS`` can be in contact.
CONTACT_HEIGHT = np.array([0.15, 0.15, 0.08, 0.08, 0.10, 0.10])
#: Speed (m/s) below which a low joint is in contact (HuMoR: 0.005 m/frame at 30 fps).
CONTACT_SPEED = 0.15


def contact_labels(joints: np.ndarray, joints_vel: np.ndarray) -> np.ndarray:
    """(T, C) bool contacts of ``CONTACT_JOINTS`` from heights over y = 0 and speeds.

    Args:
        joints: (T, >=22, 3) world joints (y up, floor at 0). joints_vel: (T, >=22, 3) m/s.
    """
    height = joints[:, list(CONTACT_JOINTS), 1]
    speed = np.linalg.norm(joints_vel[:, list(CONTACT_JOINTS)], axis=-1)
    return (height < CONTACT_HEIGHT) & (speed < CONTACT_SPEED)
