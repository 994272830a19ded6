"""BVH reader: hand-written files with known forward kinematics, malformed files, a real file."""

import tarfile
from pathlib import Path

import numpy as np
import pytest

from slahmr_opt.errors import InputError
from slahmr_opt.mocap.bvh import parse_bvh, read_bvh

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BANDAI_TAR = SHARED / "data" / "mocap" / "bandai-namco-2.tar.xz"

SIX_CHANNEL = """HIERARCHY
ROOT root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT arm
  {
    OFFSET 99 99 99
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    JOINT hand
    {
      OFFSET 10 0 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 0 0
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 0 0 0 0 0  10 0 0 0 0 0  10 0 0 0 0 0
100 0 0 0 0 0  10 0 0 90 0 0  10 0 0 0 0 0
"""

CMU_STYLE = """HIERARCHY
ROOT Hips
{
\tOFFSET 0.0 0.0 0.0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
\tJOINT Spine
\t{
\t\tOFFSET 0.0 1.0 0.0
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0.0 1.0 0.0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.008333
1 2 3 0 0 0 0 0 0
0 0 0 0 0 0 90 90 0
0 0 0 90 0 0 0 0 0
"""


def _write(tmp_path: Path, text: str, name: str = "motion.bvh") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_six_channel_positions_replace_offsets(tmp_path):
    motion = read_bvh(_write(tmp_path, SIX_CHANNEL), scale=0.01)
    assert motion.skeleton.names == ("root", "arm", "hand")
    assert motion.positions.shape == (2, 3, 3)
    assert motion.fps == 30.0
    # Frame 0: no rotation, position channels (not the 99 99 99 OFFSET) place the arm.
    np.testing.assert_allclose(motion.positions[0], [[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]])
    # Frame 1: the arm turns 90 degrees about z, so the hand moves from +x to +y of the arm.
    np.testing.assert_allclose(
        motion.positions[1], [[1.0, 0, 0], [1.1, 0, 0], [1.1, 0.1, 0]], atol=1e-12
    )
    np.testing.assert_allclose(motion.end_site_positions[1], [[1.1, 0.1, 0]], atol=1e-12)
    np.testing.assert_allclose(
        motion.rotations[1, 2], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12
    )


def test_cmu_style_three_channels_and_euler_order(tmp_path):
    motion = read_bvh(_write(tmp_path, CMU_STYLE), scale=1.0)
    assert motion.skeleton.channels[1] == ("Zrotation", "Xrotation", "Yrotation")
    assert motion.skeleton.num_channels == 9
    assert motion.fps == 120.0
    np.testing.assert_allclose(motion.positions[0], [[1, 2, 3], [1, 3, 3]])
    np.testing.assert_allclose(motion.end_site_positions[0], [[1, 4, 3]])
    # Spine: Zrotation 90 then Xrotation 90 means R = Rz(90) @ Rx(90): (0,1,0) -> (0,0,1).
    np.testing.assert_allclose(motion.end_site_positions[1], [[0, 1, 1]], atol=1e-12)
    # Root Zrotation 90 turns the spine from +y to -x.
    np.testing.assert_allclose(motion.positions[2, 1], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(motion.end_site_positions[2], [[-2, 0, 0]], atol=1e-12)


def test_rotations_are_orthonormal(tmp_path):
    motion = read_bvh(_write(tmp_path, CMU_STYLE), scale=1.0)
    rot = motion.rotations.reshape(-1, 3, 3)
    np.testing.assert_allclose(
        rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.rsplit("\n", 2)[0] + "\n", "truncated"),
        (lambda t: t.replace("0 0 0 0 0 0 90 90 0", "0 0 0 0 0 0 90 90"), "9 channels"),
        (
            lambda t: t.replace("Zrotation Xrotation Yrotation", "Zrotation Xrot Yrotation"),
            "unknown channel",
        ),
        (lambda t: t.split("MOTION")[0], "no MOTION"),
        (
            lambda t: t.replace(
                "OFFSET 0.0 1.0 0.0\n\t\tCHANNELS", "OFFSET 0.0 x 0.0\n\t\tCHANNELS"
            ),
            "not numeric",
        ),
        (lambda t: t.replace("Frame Time: 0.008333", "Frame Time: 0"), "positive"),
    ],
)
def test_malformed_file_raises_input_error_naming_file(tmp_path, edit, message):
    path = _write(tmp_path, edit(CMU_STYLE), name="broken_take.bvh")
    with pytest.raises(InputError, match=message) as info:
        read_bvh(path)
    assert "broken_take.bvh" in str(info.value)
    assert info.value.path == str(path)


def test_missing_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_bvh(tmp_path / "absent.bvh")


@pytest.mark.skipif(not BANDAI_TAR.exists(), reason=f"shared mocap data not found at {BANDAI_TAR}")
def test_real_bandai_file_parses():
    with tarfile.open(BANDAI_TAR, "r:xz") as archive:
        member = next(m for m in archive if m.name.endswith(".bvh"))
        text = archive.extractfile(member).read().decode()
    motion = parse_bvh(text, source=member.name, scale=0.01)
    assert motion.skeleton.num_joints == 22
    assert all(len(c) == 6 for c in motion.skeleton.channels)
    assert motion.fps == 30.0
    assert motion.num_frames > 10
    head_height = motion.joint("Head")[:, 1] - motion.joint("Toes_L")[:, 1].min()
    assert 1.2 < np.median(head_height) < 1.8
    hips = motion.joint("Hips")
    assert 0.7 < np.median(hips[:, 1]) < 1.1
    np.testing.assert_allclose(motion.joint("joint_Root"), 0.0)
