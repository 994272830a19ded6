"""The priors' data preparation and training, end to end on a tiny motion capture sample.

A few short synthetic walks in the Bandai-Namco layout (``mocap_sample``) go through the real
commands: the body fits (``slahmr_priors.pose_gmm.prepare``), the state build with its
shards (``slahmr_priors.data.build``), the regressor's keypoints
(``slahmr_priors.data.keypoints``), the stop-gap interpolated states
(``slahmr_priors.motion_cvae.prepare_interp``), then a few epochs (or steps) of each
trainer into ``tmp_path``. Each trained model must load with its shipped loader and evaluate.
Nothing here reads ``../shared``; the sample is too small for the models to be any good.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from mocap_sample import write_archive

from slahmr_priors.data import build, keypoints
from slahmr_priors.motion_cvae import prepare_interp
from slahmr_priors.motion_cvae import train as cvae_train
from slahmr_priors.motion_cvae.data import load_transitions
from slahmr_priors.motion_cvae.model import MotionCVAE
from slahmr_priors.pose_gmm import prepare
from slahmr_priors.pose_gmm import train as gmm_train
from slahmr_priors.pose_gmm.model import PoseGMM
from slahmr_priors.pose_vae import train as vae_train
from slahmr_priors.pose_vae.model import PoseVAE
from slahmr_priors.regressor import train as regressor_train
from slahmr_priors.regressor.data import load_motion
from slahmr_priors.regressor.features import FPS
from slahmr_priors.regressor.model import Regressor
from slahmr_priors.regressor.synth import observe

pytestmark = pytest.mark.slow

#: Take number -> frames. Training: 001-004 (the regressor needs a sequence of 128 frames or
#: more), 005 (validation of the VAE, CVAE and regressor curves: 64 frames or more); evaluation
#: (take ending in 0): six files (the CVAE's ``eval_sample.npz`` picks six sequences), one of 64
#: frames or more (the regressor's score windows). Each body fit costs about the same for 30 or
#: 300 frames (200 L-BFGS iterations), so there are two: one per split.
TRAIN = {"001": 130, "002": 30, "003": 30, "004": 30, "005": 66}
EVAL = {"010": 66, **{f"0{i}0": 20 for i in range(2, 7)}}


@pytest.fixture(autouse=True)
def _keep_threads():
    """The trainers set torch's thread count (``--threads``): give the rest of the suite back
    its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The archive, the pose priors' fit caches and the state folder, built as the READMEs say:
    prepare fits the training split; build reuses that cache and fits the evaluation split (one
    shard); the pose priors reuse build's evaluation fits."""
    root = tmp_path_factory.mktemp("priors_data")
    archive = write_archive(root / "bandai-namco-2.tar.xz", {**TRAIN, **EVAL})
    cache, states = root / "fits", root / "states"
    prepare.main(["--mocap", str(archive), "--split", "train", "--stride", "1",
                  "--out", str(cache / "train_stride1.npz"), "--workers", "1"])  # fmt: skip
    states.mkdir()
    shutil.copy(cache / "train_stride1.npz", states / "fits_train.npz")
    build.main(["--mocap", str(archive), "--out", str(states), "--workers", "1"])
    shutil.copy(states / "fits_eval.npz", cache / "eval_stride1.npz")
    keypoints.main(["--data", str(states)])
    return {"archive": archive, "cache": cache, "states": states}


def _npz(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _names(takes: dict) -> list[str]:
    return [f"dataset-2_walk_normal_{t}.bvh" for t in sorted(takes)]


def test_prepare_fits_every_frame_of_its_split(data):
    fits = _npz(data["cache"] / "train_stride1.npz")
    assert list(fits["names"]) == _names(TRAIN)
    assert np.diff(fits["seq_start"]).tolist() == [TRAIN[t] for t in sorted(TRAIN)]
    N = sum(TRAIN.values())
    assert fits["pose_body"].shape == (N, 63) and fits["betas"].shape == (len(TRAIN), 10)
    # the walks are the built-in body's own joints: the fit reproduces them to millimetres
    assert np.median(fits["residual_mm"]) < 5.0
    meta = json.loads(str(fits["metadata"]))
    assert meta["split"] == "train" and meta["files"] == len(TRAIN) and meta["frames"] == N


def test_build_writes_states_of_both_splits_and_resumes_from_shards(data, monkeypatch):
    states = data["states"]
    shards = sorted((states / "fits_eval_shards").glob("shard_*.npz"))
    assert [p.name for p in shards] == ["shard_000.npz"]  # 100 files a shard
    assert not (states / "fits_train_shards").exists()  # prepare's cache was reused
    for split, takes in (("train", TRAIN), ("eval", EVAL)):
        st = _npz(states / f"states_{split}.npz")
        N = sum(takes.values())
        assert list(st["names"]) == _names(takes) and st["seq_start"][-1] == N
        assert st["joints"].shape == (N, 22, 3) and st["contacts"].shape == (N, 6)
        for key in ("trans", "trans_vel", "root_orient_vel_c", "joints_vel_c"):
            assert np.isfinite(st[key]).all(), key
        pelvis = st["joints"][:, 0, 1]
        assert 0.7 < np.median(pelvis) < 1.1  # y up, floor at 0
        meta = json.loads(str(st["metadata"]))
        assert meta["split"] == split and meta["frames"] == N
        kp = _npz(states / f"keypoints_{split}.npz")
        assert kp["kp_w"].shape == (N, 23, 3) and kp["rest_joints"].shape == (len(takes), 24, 3)
        assert np.array_equal(kp["seq_start"], st["seq_start"])

    # a killed build resumes after its last finished shard: nothing is fitted again
    (states / "fits_eval.npz").unlink()
    monkeypatch.setattr(prepare, "fit_split", lambda *a, **k: pytest.fail("fitted again"))
    build.build(data["archive"], states, splits=("eval",), workers=1)
    assert _npz(states / "fits_eval.npz")["seq_start"][-1] == sum(EVAL.values())


def test_prepare_interp_fills_strided_fits_to_every_frame(data, tmp_path):
    fits = _npz(data["cache"] / "train_stride1.npz")
    starts = fits["seq_start"]
    rows = np.concatenate([np.arange(a, b)[::5] for a, b in zip(starts[:-1], starts[1:])])
    per_seq = [len(np.arange(a, b)[::5]) for a, b in zip(starts[:-1], starts[1:])]
    strided = {k: fits[k][rows] for k in ("frame_index", "root_orient", "trans", "pose_body",
                                         "residual_mm", "joint_error_mm")}  # fmt: skip
    meta = {**json.loads(str(fits["metadata"])), "stride": 5}
    np.savez(tmp_path / "train_stride5.npz", names=fits["names"], fps=fits["fps"],
             betas=fits["betas"], seq_start=np.cumsum([0, *per_seq]), metadata=json.dumps(meta),
             **strided)  # fmt: skip
    out = tmp_path / "states_train_interp.npz"
    prepare_interp.main(["--stride-fits", str(tmp_path / "train_stride5.npz"), "--out", str(out)])

    interp, real = _npz(out), _npz(data["states"] / "states_train.npz")
    assert list(interp["names"]) == list(real["names"])
    # every frame from the first to the last strided one, with joints near the every-frame fit
    for s, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        i0, i1 = interp["seq_start"][s : s + 2]
        last = (b - a - 1) // 5 * 5
        assert np.array_equal(interp["frame_index"][i0:i1], np.arange(last + 1))
        err = np.linalg.norm(interp["joints"][i0:i1] - real["joints"][a : a + last + 1], axis=-1)
        assert np.median(err) < 0.03, s
    assert json.loads(str(interp["metadata"]))["split"] == "train"
    assert len(load_transitions(out).prev) > 0  # the motion prior's trainer can read it


def test_pose_gmm_trains_loads_and_scores(data, tmp_path):
    out = tmp_path / "pose_gmm.npz"
    gmm_train.main(["--mocap", str(data["archive"]), "--out", str(out), "--cache-dir",
                    str(data["cache"]), "--stride", "1", "--components", "2"])  # fmt: skip
    prior = PoseGMM.load(out)
    sample = torch.from_numpy(np.load(tmp_path / "eval_sample.npz")["pose_body"]).double()
    assert sample.shape == (gmm_train.SAMPLE_SIZE, 63)
    nll = prior.nll(sample)
    assert torch.isfinite(nll).all() and torch.isfinite(prior.residual(sample)).all()
    with np.load(out) as f:
        scores = json.loads(str(f["metadata"]))["scores"]
    assert scores["train"]["mean_nll"] < scores["eval_noisy"]["mean_nll"]
    assert scores["noisy_scores_worse_fraction"] > 0.9
    assert nll.mean() < prior.nll(sample + 0.3 * torch.randn_like(sample)).mean()


def _decreased(curve: list[dict], key: str) -> None:
    values = [row[key] for row in curve]
    assert all(np.isfinite(values)), values
    assert values[-1] < values[0], values


def test_pose_vae_trains_loads_and_scores(data, tmp_path):
    out = tmp_path / "pose_vae.pt"
    vae_train.main(["--mocap", str(data["archive"]), "--out", str(out), "--cache-dir",
                    str(data["cache"]), "--stride", "1", "--epochs", "3", "--batch", "32",
                    "--kl-warmup", "1", "--latent", "8", "--hidden", "32"])  # fmt: skip
    curve = json.loads((tmp_path / "loss_curve.json").read_text())
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    _decreased(curve, "train_loss")
    assert (tmp_path / "loss_curve.png").stat().st_size > 0
    vae = PoseVAE.load(out)
    sample = torch.from_numpy(np.load(tmp_path / "eval_sample.npz")["pose_body"])
    assert torch.isfinite(vae.energy(sample)).all() and torch.isfinite(vae.residual(sample)).all()
    scores = vae.metadata["scores"]
    assert np.isfinite(scores["eval"]["vae_iw_nll"]["mean"])
    assert vae.metadata["counts"]["validation_poses"] == TRAIN["005"]


def test_motion_cvae_trains_loads_scores_and_rescores(data, tmp_path):
    states, out = data["states"], tmp_path / "motion_cvae.pt"
    args = ["--train", str(states / "states_train.npz"), "--eval", str(states / "states_eval.npz"),
            "--out", str(out)]  # fmt: skip
    cvae_train.main([*args, "--epochs", "3", "--batch", "64", "--kl-warmup", "1", "--latent",
                     "8", "--hidden", "32"])  # fmt: skip
    curve = json.loads((tmp_path / "loss_curve.json").read_text())
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    _decreased(curve, "train_neg_elbo")
    assert all(np.isfinite(row["val_neg_elbo"]) for row in curve)
    model = MotionCVAE.load(out)
    held_out = load_transitions(states / "states_eval.npz")
    energy = model.energy(held_out.prev, held_out.cur)
    assert energy.shape == (len(held_out.prev),) and torch.isfinite(energy).all()
    counts = model.metadata["counts"]
    assert counts["validation_files"] == 1 and counts["eval_files"] == len(EVAL)
    with np.load(tmp_path / "eval_sample.npz") as sample:
        assert len(sample["names"]) == 6
    assert json.loads((tmp_path / "scores.json").read_text())["scores"] == model.metadata["scores"]

    cvae_train.main([*args, "--score-only"])
    assert MotionCVAE.load(out).metadata["scored_on"] == str(states / "states_eval.npz")


def test_regressor_trains_loads_and_predicts(data, tmp_path):
    # 30 steps: the one-cycle schedule's warm-up (5 %) needs more than 20
    out = tmp_path / "regressor.pt"
    regressor_train.main(["--data", str(data["states"]), "--out", str(out), "--steps", "30",
                          "--batch", "4", "--width", "32", "--lr", "3e-3", "--log-every", "15",
                          "--threads", "1"])  # fmt: skip
    curve = json.loads((tmp_path / "loss_curve.json").read_text())
    assert [row["step"] for row in curve] == [15, 30]
    _decreased(curve, "train_joints")
    model = Regressor.load(out)
    assert model.metadata["counts"]["validation_files"] == 1
    held_out = load_motion(data["states"], "eval")
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    feats, _ = observe(held_out.sample(2, 64, rng), gen, FPS)
    pred = model(feats)
    assert pred.pose.shape == (2, 64, 21, 3, 3) and pred.contact.shape == (2, 64, 4)
    for name, value in vars(pred).items():
        assert torch.isfinite(value).all(), name


def test_the_learning_rate_schedule_works_for_any_number_of_steps():
    """``OneCycleLR`` with a 5 % warm-up divided by zero at 20 steps (a one-step phase)."""
    from slahmr_priors.data.schedule import one_cycle

    for steps in range(1, 61):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.AdamW([param], lr=1.0)
        sched = one_cycle(opt, 1e-3, steps)
        rates = []
        for _ in range(steps):
            opt.step()
            rates.append(opt.param_groups[0]["lr"])
            sched.step()
        assert max(rates) <= 1e-3 * (1 + 1e-9) and min(rates) > 0, steps
        if steps >= 40:  # the shipped priors' schedule is unchanged
            assert max(rates) == pytest.approx(1e-3, rel=0.01) and rates[-1] < 1e-6
