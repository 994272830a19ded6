"""The motion stage's evidence guard, on motions made from the bundled example (a real walk of the
evaluation split, hand-held tracking camera): every third frame of it at the same frame rate (a
walk three times as fast, far outside the prior's training data, which holds speeds 0.8-1.25x of
real motion), where the prior disagrees with the keypoints and the guard must keep each person's
RMS 2D residual within the margin of stage 2's; and the walk played backwards (in the training
data only through the prior's time-reversal augmentation), which stage 3 must not freeze."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.config import load_config
from slahmr_opt.eval.metrics import jitter
from slahmr_opt.experiments.evaluate import evaluate_result
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.io.results import write_result
from slahmr_opt.solve import solve
from slahmr_opt.types import Observations

pytestmark = pytest.mark.slow


def retimed(obs: Observations, frames: np.ndarray) -> Observations:
    """The observations of ``frames`` (frame indices: reversed they play the video backwards,
    every third frame at the same frame rate makes the motion three times as fast)."""
    frames = torch.as_tensor(frames)
    cams = obs.cameras
    cams = replace(cams, R_w2c=cams.R_w2c[frames], t_w2c=cams.t_w2c[frames],
                   intrins=cams.intrins[frames])  # fmt: skip
    guess = obs.smpl_guess
    if guess is not None:
        guess = replace(guess, **{k: getattr(guess, k)[:, frames] for k in (
            "global_orient_c", "body_pose", "betas", "transl_c", "valid")})  # fmt: skip
    return replace(obs, kp2d=obs.kp2d[:, frames], track_mask=obs.track_mask[:, frames],
                   vis_mask=obs.vis_mask[:, frames], cameras=cams, smpl_guess=guess,
                   bbox=None if obs.bbox is None else obs.bbox[:, frames])  # fmt: skip


def _retimed_gt(frames: np.ndarray, path) -> float:
    """Write the example's ground truth for ``frames`` to ``path``; return its jitter."""
    with np.load(EXAMPLE_DIR / "gt.npz") as gt:
        out = {k: gt[k][:, frames] if gt[k].ndim >= 2 and k not in ("betas", "cam_R", "cam_t")
               else gt[k] for k in gt.files}  # fmt: skip
        out["cam_R"], out["cam_t"] = gt["cam_R"][frames], gt["cam_t"][frames]
    np.savez(path, **out)
    return float(jitter(out["joints"][0], 30.0).mean())


def _fit(obs, tmp, kind, name, overrides=()):
    cfg = load_config(None, ["num_threads=1", *overrides])
    result = solve(obs, cfg, checkpoint_dir=tmp / f"checkpoints_{kind}", progress=False)
    metrics = evaluate_result(write_result(result, tmp / name), tmp / f"gt_{kind}.npz")
    return {"motion": result.stages[-1], "metrics": metrics}


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """Default fits of the fast and the backwards walk, and of the fast walk with a guard that
    allows any rise (it only reports); runs of one walk share the stage 1-2 checkpoints."""
    tmp = tmp_path_factory.mktemp("retimed")
    obs = load_observations(EXAMPLE_DIR / "tracks.npz", EXAMPLE_DIR / "cameras.npz")
    T = obs.num_frames
    frames = {"fast": np.arange(0, T, 3), "backwards": np.arange(T)[::-1].copy()}
    out = {}
    for kind, idx in frames.items():
        out[f"{kind}_gt_jitter"] = _retimed_gt(idx, tmp / f"gt_{kind}.npz")
        out[f"{kind}_guarded"] = _fit(retimed(obs, idx), tmp, kind, f"{kind}_guarded")
    for name, overrides in (
        ("unguarded", ["stages.motion.evidence_margin=100"]),
        # a prior 10,000 times too strong: the guard cannot lower it enough in 30 iterations
        ("overruled", ["stages.motion.evidence_margin=0.05",
                       "stages.motion.weights.motion_prior=100"]),
    ):  # fmt: skip
        out[f"fast_{name}"] = _fit(retimed(obs, frames["fast"]), tmp, "fast", f"fast_{name}",
                                   overrides)  # fmt: skip
    return out


def test_without_the_guard_the_prior_trades_the_evidence_away(fits):
    """The sequence does what it is built for: unguarded, the prior pulls the fast walk away
    from the keypoints."""
    (person,) = fits["fast_unguarded"]["motion"].people
    assert person["kp2d_rms_ratio"] > 1.5
    assert person["dominated"] == "evidence"  # the margin of 100 never triggered


def test_the_guard_keeps_the_evidence_within_the_margin(fits):
    margin = load_config(None).stages[-1].evidence_margin
    assert margin > 0
    (person,) = fits["fast_guarded"]["motion"].people
    assert person["kp2d_rms_ratio"] <= 1 + margin + 1e-6
    assert person["dominated"] == "prior"
    assert person["prior_weight_factor"] < 1 or person["reset"]
    guarded, unguarded = (fits[k]["metrics"] for k in ("fast_guarded", "fast_unguarded"))
    # Measured before the window cap: RMS 2D residual x1.32 of stage 2's guarded (prior weight
    # x0.0625) against x2.16; PA-MPJPE 50.7 against 70.2 mm; jitter 42.9 against 8.8 (the
    # unguarded prior freezes the fast walk; the truth's is 118). With the cap: 50.6 mm, 43.7.
    assert guarded["pa_mpjpe"] < unguarded["pa_mpjpe"]
    assert guarded["jitter"] > 2 * unguarded["jitter"]


def test_the_cap_bounds_the_windows_the_prior_cannot_explain(fits):
    """The default cap (the prior's held-out 99th percentile) acts on the fast walk, which the
    prior never saw at that speed (48 windows before the stage waited for the cap to settle), and
    on none of the walk backwards, which it learned through its time-reversal augmentation."""
    assert load_config(None).stages[-1].prior_window_cap > 0
    (fast,) = fits["fast_guarded"]["motion"].people
    (backwards,) = fits["backwards_guarded"]["motion"].people
    assert fast["windows_capped"] >= 10
    assert backwards["windows_capped"] == 0


def test_the_backwards_walk_is_not_frozen(fits):
    """The walk backwards keeps its motion: jitter measured 4.1 against the truth's 11.2, the
    same ratio as the walk forwards (4.2). Issue 13's rule (at least half the truth's) is not met
    by any walk yet, forwards or backwards; this bound catches a frozen walk (the prior before
    its time-reversal augmentation, or unguarded on a walk it cannot explain: jitter 8.8
    against 118 on the fast walk above) until it is."""
    assert fits["backwards_guarded"]["metrics"]["jitter"] >= 0.25 * fits["backwards_gt_jitter"]


def test_a_person_above_the_margin_at_the_end_keeps_the_start(fits):
    """A prior the guard cannot tame in time: the person gets its stage-2 body back, exactly."""
    (person,) = fits["fast_overruled"]["motion"].people
    assert person["reset"] and person["dominated"] == "prior"
    assert person["track"] == "001"  # the example's track id
    assert person["kp2d_end"] == pytest.approx(person["kp2d_start"], rel=1e-5)


def test_window_cap_bounds_each_window_at_the_cap():
    """A window above the cap gets the factor that brings its squared residual to the cap,
    whatever the guard's scale already on it; windows below keep weight 1."""
    from slahmr_opt.costs.term import Input, Term
    from slahmr_opt.stages.evidence import window_cap_factors

    trans = torch.tensor([[[1.0, 0, 0], [3.0, 4.0, 0], [0, 0, 20.0], [0.5, 0, 0]]])
    term = Term(name="motion_prior", fn=lambda x, scale: scale * x, inputs=(Input("x", "trans"),),
                person=torch.zeros(4, dtype=torch.long), frame=torch.arange(4), dim=3,
                data={"scale": torch.tensor([[1.0], [1.0], [0.5], [0.25]])})  # fmt: skip
    factors = window_cap_factors(term, {"trans": trans}, cap=16.0)
    # unweighted |r|^2: 1, 25, 400, 0.25
    assert factors[:, 0].tolist() == pytest.approx([1.0, 0.8, 0.2, 1.0])
    capped = (factors * trans[0]).square().sum(1)
    assert capped.tolist() == pytest.approx([1.0, 16.0, 16.0, 0.25])
