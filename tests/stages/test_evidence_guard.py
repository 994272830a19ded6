"""The motion stage's evidence guard on a motion the prior has never seen: the bundled example (a
real walk of the evaluation split, hand-held tracking camera) played backwards, so the person
walks backwards, which no training file holds. The prior disagrees with the keypoints there; the
guard keeps each person's RMS 2D residual within the margin of stage 2's, and the motion is not
frozen."""

from dataclasses import replace

import numpy as np
import pytest

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.config import load_config
from slahmr_opt.eval.evaluate import evaluate_result
from slahmr_opt.eval.metrics import jitter
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.io.results import write_result
from slahmr_opt.solve import solve
from slahmr_opt.types import Observations


def played_backwards(obs: Observations) -> Observations:
    """The same observations with time reversed (every per-frame tensor flipped)."""
    cams = obs.cameras
    cams = replace(cams, R_w2c=cams.R_w2c.flip(0), t_w2c=cams.t_w2c.flip(0),
                   intrins=cams.intrins.flip(0))  # fmt: skip
    guess = obs.smpl_guess
    if guess is not None:
        guess = replace(guess, **{k: getattr(guess, k).flip(1) for k in (
            "global_orient_c", "body_pose", "betas", "transl_c", "valid")})  # fmt: skip
    return replace(obs, kp2d=obs.kp2d.flip(1), track_mask=obs.track_mask.flip(1),
                   vis_mask=obs.vis_mask.flip(1), cameras=cams, smpl_guess=guess,
                   bbox=None if obs.bbox is None else obs.bbox.flip(1))  # fmt: skip


@pytest.fixture(scope="module")
def backwards(tmp_path_factory):
    """Stage reports and metrics of the default (guarded) fit and of a fit whose guard allows
    any rise (it only reports), on the backwards walk; both share the stage 1-2 checkpoints."""
    tmp = tmp_path_factory.mktemp("backwards")
    obs = played_backwards(load_observations(EXAMPLE_DIR / "tracks.npz",
                                             EXAMPLE_DIR / "cameras.npz"))  # fmt: skip
    with np.load(EXAMPLE_DIR / "gt.npz") as gt:
        flipped = {k: gt[k][:, ::-1] if gt[k].ndim >= 2 and k not in ("betas", "cam_R", "cam_t")
                   else gt[k] for k in gt.files}  # fmt: skip
        flipped["cam_R"], flipped["cam_t"] = gt["cam_R"][::-1], gt["cam_t"][::-1]
    np.savez(tmp / "gt.npz", **flipped)
    out = {"gt_jitter": float(jitter(flipped["joints"][0], obs.fps).mean())}
    for name, overrides in (("guarded", []), ("unguarded", ["stages.motion.evidence_margin=100"])):
        cfg = load_config(None, ["num_threads=1", *overrides])
        result = solve(obs, cfg, checkpoint_dir=tmp / "checkpoints", progress=False)
        metrics = evaluate_result(write_result(result, tmp / name), tmp / "gt.npz")
        out[name] = {"motion": result.stages[-1], "metrics": metrics}
    return out


def test_without_the_guard_the_prior_trades_the_evidence_away(backwards):
    """The sequence does what it is built for: unguarded, the prior pulls the backwards walk
    away from the keypoints (RMS 2D residual measured x2.4 of stage 2's)."""
    (person,) = backwards["unguarded"]["motion"]["people"]
    assert person["kp2d_rms_ratio"] > 1.5
    assert person["dominated"] == "evidence"  # the margin of 100 never triggered


def test_the_guard_keeps_the_evidence_within_the_margin(backwards):
    cfg = load_config(None)
    margin = cfg.stages[-1].evidence_margin
    assert margin > 0
    (person,) = backwards["guarded"]["motion"]["people"]
    assert person["kp2d_rms_ratio"] <= 1 + margin + 1e-6
    assert person["dominated"] == "prior"
    assert person["prior_weight_factor"] < 1 or person["reset"]
    # Measured: PA-MPJPE 34.9 guarded against 61.0 unguarded.
    guarded, unguarded = (backwards[k]["metrics"] for k in ("guarded", "unguarded"))
    assert guarded["pa_mpjpe"] < unguarded["pa_mpjpe"]


def test_the_backwards_walk_is_not_frozen(backwards):
    """Each sequence's jitter at least half the truth's (issue 13's frozen-motion rule)."""
    assert backwards["guarded"]["metrics"]["jitter"] >= 0.5 * backwards["gt_jitter"]
