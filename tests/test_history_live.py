"""A live loss history: ``solve(on_iteration=...)`` sees every iteration as it happens, and
``FollowJob`` keeps ``history.csv`` and ``progress.json`` that a notebook can read while the job
runs."""

import csv

from slahmr_opt.history import FollowJob, LossHistory, read_progress


def test_follow_job_files_are_complete_after_every_record(tmp_path):
    path = tmp_path / "history.csv"
    seen = []

    def check(history, record):
        follow(history, record)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        progress = read_progress(tmp_path)
        seen.append((len(rows), rows[-1]["stage"], float(rows[-1]["total"]),
                     progress["stage_index"], progress["iteration"], progress["loss"]))  # fmt: skip

    follow = FollowJob(tmp_path, [("root", 30), ("smooth", 10)])
    assert read_progress(tmp_path) is None
    history = LossHistory(check)
    for i in range(1, 4):
        history.add("root", i, 10.0 - i, {"kp2d": 5.0 - i})
    history.start_stage()
    history.add("smooth", 4, 4.0, {"kp2d": 2.0, "pose_prior": 2.0})
    assert seen == [(1, "root", 9.0, 1, 1, 9.0), (2, "root", 8.0, 1, 2, 8.0),
                    (3, "root", 7.0, 1, 3, 7.0), (4, "smooth", 4.0, 2, 4, 4.0)]  # fmt: skip
    progress = read_progress(tmp_path)
    assert progress["state"] == "running" and progress["stages"] == ["root", "smooth"]
    assert progress["max_iterations"] == 10 and progress["stage_eta_seconds"] >= 0
    follow.finish()
    assert read_progress(tmp_path)["state"] == "done"
    back = LossHistory.load(path)
    assert [r.terms for r in back.records][-1] == {"kp2d": 2.0, "pose_prior": 2.0}
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written is left behind


def test_solve_reports_every_iteration(tmp_path):
    """The callback gets exactly the records of the returned history, in order."""
    from stages.scene import make_scene

    from slahmr_opt.config import load_config
    from slahmr_opt.solve import solve

    obs = make_scene(num_frames=12).obs
    cfg = load_config("stages_1_2", ["num_threads=1", "stages.root.solver.iterations=2",
                                     "stages.smooth.solver.iterations=2"])  # fmt: skip
    seen = []
    result = solve(obs, cfg, progress=False, on_iteration=lambda h, r: seen.append(r))
    assert seen == result.history.records and len(seen) >= 4
    assert {r.stage for r in seen} == {"root", "smooth"}
