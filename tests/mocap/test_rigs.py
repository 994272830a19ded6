"""Other skeletons than Bandai-Namco: CMU BVH read and fitted, rigs mapped by joint names, units,
up axis, the split rule only for Bandai-Namco files.

``data/cmu_01_03_excerpt.bvh`` is an excerpt of the CMU Graphics Lab Motion Capture Database,
subject 1, trial 3 (mocap.cs.cmu.edu; free for research and commercial use), in the cgspeed "BVH
conversion" by B. Hahne, as mirrored in github.com/una-dinosauria/cmu-mocap (data/001/01_03.bvh,
commit 5d98bb6b): the full hierarchy (re-indented) and motion frames 2-25 of 4511 (the first, a
calibration pose, left out), 120 fps.
"""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.mocap.bvh import parse_bvh
from slahmr_opt.mocap.rigs import (
    BANDAI,
    CMU_UNIT,
    Z_UP_TO_Y_UP,
    choose_scale,
    detect_rig,
    leg_length,
    map_joint_names,
)
from slahmr_opt.mocap.sources import list_motions, read_motion
from slahmr_opt.mocap.targets import check_handedness, smpl_targets
from slahmr_opt.synth.benchmark import fit_motions

CMU = Path(__file__).parent / "data" / "cmu_01_03_excerpt.bvh"


def _renamed(pairs: dict[str, str]) -> str:
    text = CMU.read_text()
    pattern = re.compile(r"\b(JOINT|ROOT) (\S+)")
    return pattern.sub(lambda m: f"{m.group(1)} {pairs.get(m.group(2), m.group(2))}", text)


@pytest.fixture(scope="module")
def cmu_motion():
    return read_motion(CMU.read_bytes(), str(CMU), "01_03.bvh")


def test_cmu_excerpt_is_read_in_metres_at_30_fps(cmu_motion):
    m = cmu_motion
    assert detect_rig(m.skeleton, "x").name == "cmu"
    assert m.scale == pytest.approx(CMU_UNIT) and m.skeleton.num_joints == 31
    # 24 frames at 120 fps -> every 4th frame
    assert m.num_frames == 6 and m.fps == 30.0 and m.frame_time == pytest.approx(4 * 0.0083333)
    hips = m.joint("Hips")
    assert hips[0] == pytest.approx(np.array([-0.8085, 17.8049, 18.3516]) * CMU_UNIT, abs=1e-9)
    assert hips[0, 1] == pytest.approx(1.005, abs=0.001)  # standing hips about 1 m up
    mapped = map_joint_names(m.skeleton)
    assert leg_length(m.skeleton, mapped) * m.scale == pytest.approx(0.835, abs=0.002)
    assert mapped["neck"] == "Neck1" and mapped["spine3"] == "Spine1"
    assert "left_collar" not in mapped  # LeftShoulder sits at zero offset: no point of its own
    targets, weights = smpl_targets(m, detect_rig(m.skeleton, "x").table)
    assert weights[0] == 0.0 and weights[1] == 0.5
    assert check_handedness(targets, "x") == 1.0


def test_cmu_excerpt_fits_a_body_of_plausible_size(cmu_motion):
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    (fit,) = fit_motions(body, [cmu_motion], max_frames=10)
    j = fit.joints
    assert j.shape == (6, 24, 3)
    leg = np.linalg.norm(j[:, 4] - j[:, 1], axis=-1) + np.linalg.norm(j[:, 7] - j[:, 4], axis=-1)
    assert 0.7 < leg.mean() < 1.0
    assert 0.85 < j[:, 0, 1].mean() < 1.05  # the pelvis, metres above the floor of the file
    assert fit.residual_mm.mean() < 50.0
    assert np.nanmax(fit.joint_error_mm[:, [4, 5, 7, 8]]) < 30.0  # knees and ankles
    assert np.abs(fit.betas).max() < 10.0


def test_mixamo_and_anatomical_names_are_mapped():
    cmu = ("LHipJoint RHipJoint LeftUpLeg LeftLeg LeftFoot LeftToeBase RightUpLeg RightLeg "
           "RightFoot RightToeBase Spine Spine1 Neck1 Head LeftShoulder LeftArm LeftForeArm "
           "LeftHand RightShoulder RightArm RightForeArm RightHand Hips").split()  # fmt: skip
    mixamo = parse_bvh(_renamed({n: f"mixamorig:{n}" for n in cmu}), "m.bvh", scale=1.0)
    rig = detect_rig(mixamo.skeleton, "m.bvh")
    assert rig.name == "by-name" and rig.scale == pytest.approx(CMU_UNIT)
    mapped = map_joint_names(mixamo.skeleton)
    assert mapped["left_hip"] == "mixamorig:LeftUpLeg"
    assert mapped["left_shoulder"] == "mixamorig:LeftArm"
    anatomical = {"LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee", "LeftFoot": "LeftAnkle",
                  "RightUpLeg": "RightHip", "RightLeg": "RightKnee", "RightFoot": "RightAnkle",
                  "LeftShoulder": "LeftCollar", "LeftArm": "LeftShoulder",
                  "LeftForeArm": "LeftElbow", "LeftHand": "LeftWrist",
                  "RightShoulder": "RightCollar", "RightArm": "RightShoulder",
                  "RightForeArm": "RightElbow", "RightHand": "RightWrist"}  # fmt: skip
    named = parse_bvh(_renamed(anatomical), "a.bvh", scale=1.0)
    mapped = map_joint_names(named.skeleton)
    assert (mapped["left_knee"], mapped["left_ankle"]) == ("LeftKnee", "LeftAnkle")
    assert (mapped["right_shoulder"], mapped["right_wrist"]) == ("RightShoulder", "RightWrist")


def test_unknown_rig_names_the_joints_it_cannot_map():
    odd = parse_bvh(_renamed({"LeftLeg": "Bone07", "RightHand": "Bone22"}), "odd.bvh", 1.0)
    with pytest.raises(InputError, match=r"odd.bvh: unknown skeleton: cannot map the SMPL "
                       r"joints \['left_knee', 'right_wrist'\]"):  # fmt: skip
        detect_rig(odd.skeleton, "odd.bvh")


def test_units_by_leg_length():
    assert choose_scale(14.8, CMU_UNIT, "f") == CMU_UNIT
    assert choose_scale(85.0, None, "f") == 0.01
    assert choose_scale(0.85, CMU_UNIT, "f") == 1.0  # a CMU file already in metres
    assert choose_scale(33.0, None, "f") == 0.0254
    with pytest.raises(InputError, match="f: cannot tell the length unit.*3 file units"):
        choose_scale(3.0, None, "f")


def test_z_up_rest_pose_is_turned_and_a_lying_one_refused(cmu_motion):
    skel = cmu_motion.skeleton
    z_up = replace(skel, offsets=skel.offsets @ Z_UP_TO_Y_UP)  # (x, y, z) -> (x, -z, y)
    rig = detect_rig(z_up, "z.bvh")
    assert np.allclose(rig.to_world, Z_UP_TO_Y_UP)
    assert np.allclose(rig.to_world @ rig.rotations[0][2], detect_rig(skel, "y").rotations[0][2])
    lying = replace(skel, offsets=skel.offsets[:, [1, 0, 2]])
    with pytest.raises(InputError, match="lying.bvh: rest pose .* is not upright"):
        detect_rig(lying, "lying.bvh")


def test_split_rule_applies_to_bandai_files_only(tmp_path):
    cmu = tmp_path / "01_01.bvh"  # take 1: would be "training" by the Bandai rule
    cmu.write_bytes(CMU.read_bytes())
    (motion,) = list_motions([cmu])
    assert motion.source == "01_01.bvh" and motion.fps == 30.0
    bandai = tmp_path / "dataset-2_walk_normal_001.bvh"
    bandai.write_bytes(CMU.read_bytes())
    with pytest.raises(InputError, match="dataset-2_walk_normal_001.bvh: is a Bandai-Namco "
                       "training file"):  # fmt: skip
        list_motions([bandai])
    assert len(list_motions([bandai], allow_train=True)) == 1
    assert BANDAI.has_split and not detect_rig(motion.skeleton, "x").has_split
