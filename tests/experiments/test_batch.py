"""Batch jobs (``experiments.batch``): results come back to the driver and land under the batch
folder, ``job.json`` last; a rerun skips finished jobs with the same key; bad input fails at
once, a crash is retried; the same on a spawn pool and on a local Ray instance, and ``bench
run`` over Ray scores what the sequential run scores."""

import json
import os

import pytest
from batch_fns import bad_input, crash_once, double

from slahmr_opt.cli.main import main
from slahmr_opt.experiments.batch import BatchSettings, Job, run_jobs, summary_rows

pytestmark = pytest.mark.timeout(600)


def _jobs(key="k"):
    return [Job(f"job{i}", double, {"n.txt": str(i).encode()}, {"factor": 3}, key)
            for i in range(3)]  # fmt: skip


def _check(root, outcomes):
    assert [o.status for o in outcomes] == ["done"] * 3
    for i, outcome in enumerate(outcomes):
        assert outcome.record["value"] == 3 * i
        assert (root / f"job{i}" / "twice.txt").read_text() == str(3 * i)
        assert json.loads((root / f"job{i}" / "sub" / "pid.json").read_text())["pid"] > 0
        assert json.loads((root / f"job{i}" / "job.json").read_text())["record"]["value"] == 3 * i
    assert not list(root.rglob("*.tmp"))


def test_jobs_in_this_process_store_and_resume(tmp_path):
    outcomes = run_jobs(_jobs(), tmp_path, progress=False)
    _check(tmp_path, outcomes)
    assert {o.record["pid"] for o in outcomes} == {os.getpid()}
    again = run_jobs(_jobs(), tmp_path, progress=False)
    assert [o.status for o in again] == ["skipped"] * 3
    assert [o.record for o in again] == [o.record for o in outcomes]
    assert [o.status for o in run_jobs(_jobs("other config"), tmp_path, progress=False)] == [
        "done"
    ] * 3
    rerun = run_jobs(_jobs("other config"), tmp_path, progress=False, rerun=True)
    assert [o.status for o in rerun] == ["done"] * 3


def test_bad_input_fails_at_once_and_a_crash_is_retried(tmp_path):
    counter = tmp_path / "calls.txt"
    jobs = [Job("bad", bad_input, {}), Job("flaky", crash_once, {}, {"counter": str(counter)})]
    bad, flaky = run_jobs(jobs, tmp_path / "out", BatchSettings(retries=1), progress=False)
    assert bad.status == "failed" and bad.attempts == 1 and "not a number" in bad.error
    assert not (tmp_path / "out" / "bad").exists()
    assert flaky.status == "done" and flaky.attempts == 2 and flaky.record == {"calls": 2}
    rows = summary_rows([bad, flaky], ["calls"])
    assert rows[0]["status"] == "failed" and rows[1]["calls"] == 2


def test_spawn_pool(tmp_path):
    outcomes = run_jobs(_jobs(), tmp_path, BatchSettings(workers=2), progress=False)
    _check(tmp_path, outcomes)
    assert os.getpid() not in {o.record["pid"] for o in outcomes}


@pytest.mark.slow
def test_ray_local_jobs_and_bench_run(tmp_path, bench_small):
    """Jobs as tasks of a local Ray instance; then ``bench run --ray local`` against the same
    benchmark run in turn: the same sequences, the same scores."""
    pytest.importorskip("ray")
    settings = BatchSettings(workers=2, ray="local", memory_gb=0.5)
    counter = tmp_path / "calls.txt"
    flaky = Job("flaky", crash_once, {}, {"counter": str(counter)})
    jobs = [*_jobs(), Job("bad", bad_input, {}), flaky]
    outcomes = run_jobs(jobs, tmp_path / "jobs", settings, progress=False)
    _check(tmp_path / "jobs", outcomes[:3])
    bad, flaky = outcomes[3:]
    assert bad.status == "failed" and "not a number" in bad.error
    assert flaky.status == "done" and flaky.record == {"calls": 2}  # Ray retried the crash
    fast = ["stages.root.solver.iterations=3", "stages.smooth.solver.iterations=3",
            "stages.motion.solver.iterations=2", "num_threads=1"]  # fmt: skip
    plain, on_ray = tmp_path / "plain", tmp_path / "ray"
    assert main(["bench", "run", "--bench", str(bench_small), "--out", str(plain), *fast]) == 0
    args = ["bench", "run", "--bench", str(bench_small), "--out", str(on_ray), "--ray", "local",
            "--workers", "2", "--task-memory-gb", "1", *fast]  # fmt: skip
    assert main(args) == 0
    a = json.loads((plain / "metrics.json").read_text())
    b = json.loads((on_ray / "metrics.json").read_text())
    assert sorted(a["sequences"]) == sorted(b["sequences"]) and len(a["sequences"]) == 2
    assert b["failed"] == {} and a["config_hash"] == b["config_hash"]
    for name, score in a["sequences"].items():
        assert b["sequences"][name]["config_hash"] == score["config_hash"]
        assert b["sequences"][name]["pa_mpjpe"] == pytest.approx(score["pa_mpjpe"], rel=1e-3)
        assert (on_ray / name / "results.npz").is_file() and (on_ray / name / "job.json").is_file()
    assert main(args) == 0  # resumes: every sequence read back


@pytest.fixture
def bench_small(tmp_path):
    """Two 40-frame sequences (pan and static) of an evaluation-split walk."""
    from mocap_walks import extract_eval_walks

    from slahmr_opt.synth.benchmark import make_benchmark

    mocap = tmp_path / "mocap"
    mocap.mkdir()
    extract_eval_walks(mocap, 1)
    out = tmp_path / "bench"
    make_benchmark([sorted(mocap.iterdir())[0]], out, seed=5, cameras=("pan", "static"),
                   max_frames=40)  # fmt: skip
    return out


def test_ray_without_ray_is_one_line(tmp_path, monkeypatch, capsys):
    """``--ray`` where Ray is not installed: exit 2 and what to install, before any work."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))  # fmt: skip
    bench = tmp_path / "bench"
    bench.mkdir()
    assert main(["bench", "run", "--bench", str(bench), "--out", str(tmp_path / "o"),
                 "--ray", "local"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'slahmr-opt[ray]'" in err[0]
    assert not (tmp_path / "o").exists()
