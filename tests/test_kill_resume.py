"""A fit killed (SIGKILL) while it writes a checkpoint or its results resumes on the rerun and
ends with the same results, bit for bit, as a run never killed; the killed run leaves no
``results.npz`` behind and the rerun no temporary files."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from stages.scene import make_scene

from slahmr_opt.inputs.cameras import write_cameras_npz
from slahmr_opt.inputs.track_data import tracks_from_observations
from slahmr_opt.inputs.tracks import write_tracks_npz

FAST = ["stages.root.solver.iterations=3", "stages.smooth.solver.iterations=3",
        "stages.motion.solver.iterations=2", "costs.pose_prior=l2", "num_threads=1"]  # fmt: skip

# Runs ``slahmr-opt fit`` and kills itself with SIGKILL at the chosen write: half-way through
# the second checkpoint (``checkpoint``) or just before results.npz is renamed into place.
CHILD = """
import io, os, signal, sys
import torch
from slahmr_opt.cli import main

where, argv = sys.argv[1], sys.argv[2:]
real_save, real_replace, saves = torch.save, os.replace, []

def dying_save(obj, f, *args, **kwargs):
    saves.append(1)
    if where == "checkpoint" and len(saves) == 2:
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)

def dying_replace(src, dst, *args, **kwargs):
    if where == "results" and str(dst).endswith("results.npz"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)

torch.save, os.replace = dying_save, dying_replace
sys.exit(main(argv))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    obs = make_scene(num_people=1, num_frames=25, camera="orbit", seed=3).obs
    write_tracks_npz(d / "tracks.npz", tracks_from_observations(obs))
    write_cameras_npz(d / "cameras.npz", obs.cameras)
    return d


def _fit(inputs, out, where: str | None = None) -> subprocess.CompletedProcess:
    argv = ["fit", "--tracks", str(inputs / "tracks.npz"), "--cameras",
            str(inputs / "cameras.npz"), "--out", str(out), *FAST]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", CHILD, where] if where else [
        sys.executable, "-m", "slahmr_opt.cli"]  # fmt: skip
    return subprocess.run([*command, *argv], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def never_killed(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "out"
    done = _fit(inputs, out)
    assert done.returncode == 0, done.stderr
    with np.load(out / "results.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.slow
@pytest.mark.parametrize("where", ["checkpoint", "results"])
def test_a_killed_fit_resumes_to_the_same_results(inputs, never_killed, tmp_path, where):
    out = tmp_path / "out"
    killed = _fit(inputs, out, where)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "results.npz").exists()
    rerun = _fit(inputs, out)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from" in rerun.stderr
    with np.load(out / "results.npz") as f:
        assert set(f.files) == set(never_killed)
        for key in f.files:
            np.testing.assert_array_equal(f[key], never_killed[key], err_msg=key)
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
