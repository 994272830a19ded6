"""Ablation grids: validation before any fit, local pool and Ray runs, resume, tables."""

import csv
import json
import uuid
from pathlib import Path

import pytest

from slahmr_opt.cli import ablate as ablate_command
from slahmr_opt.errors import ConfigError
from slahmr_opt.experiments.ablate import load_grid, run_ablation
from slahmr_opt.experiments.ablate_table import flatten_metrics

FRAMES = {"seq_a": 10, "seq_b": 30}
ERROR_MM = {"seq_a": 100.0, "seq_b": 200.0}
GRID = """
variants:
  default: {}
  no_pose_prior:
    overrides: [stages.smooth.weights.pose_prior=0]
"""


def fake_scorer(seq_dir, out_dir, config=None, overrides=()):
    """Deterministic metrics from the sequence and the overrides; each call leaves a file."""
    seq = Path(seq_dir).name
    calls = Path(seq_dir).parent / "calls"
    calls.mkdir(exist_ok=True)
    (calls / uuid.uuid4().hex).write_text(f"{Path(out_dir).parent.name}/{seq}")
    penalty = 1000.0 if "stages.smooth.weights.pose_prior=0" in overrides else 0.0
    return {
        "frames": FRAMES[seq],
        "seconds": 1.5,
        "w_mpjpe100": ERROR_MM[seq] + penalty,
        "pve": float("nan") if seq == "seq_b" else 7.0,
        "camera": "pan",
        "stage_seconds": {"root": 0.5},
        "final_losses": {"root": FRAMES[seq] / 10},
    }


def _calls(bench: Path) -> int:
    return len(list((bench / "calls").glob("*"))) if (bench / "calls").exists() else 0


@pytest.fixture
def bench(tmp_path) -> Path:
    root = tmp_path / "bench"
    for name in FRAMES:
        (root / name).mkdir(parents=True)
    (root / "index.json").write_text(json.dumps({"sequences": list(FRAMES)}))
    return root


@pytest.fixture
def grid(tmp_path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return path


def _table(out: Path) -> dict[str, dict[str, str]]:
    with (out / "table.csv").open() as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


def _check_table(out: Path) -> None:
    rows = _table(out)
    assert list(rows) == ["default", "no_pose_prior"]
    mean = (10 * 100.0 + 30 * 200.0) / 40
    assert float(rows["default"]["w_mpjpe100"]) == pytest.approx(mean)
    assert float(rows["no_pose_prior"]["w_mpjpe100"]) == pytest.approx(mean + 1000.0)
    assert float(rows["default"]["frames"]) == 40
    assert float(rows["default"]["seconds"]) == pytest.approx(3.0)
    assert float(rows["default"]["stage_seconds.root"]) == pytest.approx(1.0)
    assert float(rows["default"]["final_losses.root"]) == pytest.approx((10 + 90) / 40)
    assert float(rows["default"]["frames_per_second"]) == pytest.approx(40 / 3.0)
    assert float(rows["default"]["pve"]) == 7.0
    markdown = (out / "table.md").read_text()
    assert "| default | 2 | 40 | 3 | 13.33 | 175.0 | 2.5 | 7 | 1 |" in markdown
    with (out / "cells.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4


def test_shipped_grids_resolve():
    for name in ("priors", "solvers"):
        variants = load_grid(Path(__file__).parents[2] / "configs" / "ablations" / f"{name}.yaml")
        assert len({v.config_hash for v in variants}) == len(variants)


def test_unknown_key_names_grid_and_variant(tmp_path, bench):
    path = tmp_path / "bad.yaml"
    path.write_text(GRID + "  typo:\n    overrides: [stages.smooth.solver.iters=3]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: variant 'typo'.*iters"):
        run_ablation(path, bench, tmp_path / "out", scorer=fake_scorer)
    assert _calls(bench) == 0


@pytest.mark.parametrize(
    "text, match",
    [
        ("variants: {}\n", "non-empty"),
        ("variant: {a: {}}\n", "unknown grid keys"),
        ("variants:\n  a: {overides: [x=1]}\n", "variant 'a'"),
        ("variants:\n  a: {overrides: [init.scale]}\n", "not key=value"),
        ("variants:\n  a: {config: no_such_config}\n", "variant 'a'.*not found"),
        ("variants:\n  a: {overrides: [init.scale=sideways]}\n",
         "variant 'a'.*init.scale must be one of"),
    ],
)
def test_malformed_grid(tmp_path, text, match):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_grid(path)


def test_flatten_metrics():
    flat = flatten_metrics(
        {"a": 1, "ok": True, "name": "x", "s": [{"name": "r", "l": {"kp2d": 2.0}}], "v": [1, 2]}
    )
    assert flat == {"a": 1.0, "s.r.l.kp2d": 2.0}


@pytest.mark.slow
def test_local_pool_table_and_resume(tmp_path, bench, grid):
    out = tmp_path / "out"
    run_ablation(grid, bench, out, workers=2, scorer=fake_scorer)
    assert _calls(bench) == 4
    _check_table(out)
    cell = json.loads((out / "cells" / "default" / "seq_a" / "cell.json").read_text())
    assert cell["metrics"]["w_mpjpe100"] == 100.0

    # Half done: one cell lost, one cell from an older config; only those two run again.
    (out / "cells" / "default" / "seq_a" / "cell.json").unlink()
    stale = out / "cells" / "no_pose_prior" / "seq_b" / "cell.json"
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "config_hash": "old"}))
    run_ablation(grid, bench, out, workers=1, scorer=fake_scorer)
    assert _calls(bench) == 6
    _check_table(out)
    run_ablation(grid, bench, out, workers=2, scorer=fake_scorer)
    assert _calls(bench) == 6


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ray_matches_local(tmp_path, bench, grid):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_ablation(grid, bench, local, workers=2, scorer=fake_scorer)
    run_ablation(grid, bench, remote, "ray", "local", workers=2, scorer=fake_scorer)
    assert not ray.is_initialized()
    assert _calls(bench) == 8
    assert _table(local) == _table(remote)
    assert (local / "table.md").read_text() == (remote / "table.md").read_text()


def test_cli_parser():
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    ablate_command.add_parser(sub)
    args = sub.choices["ablate"].parse_args(["--grid", "priors", "--bench", "b", "--ray", "auto"])
    assert (args.grid, args.bench, args.ray, args.workers, args.out) == (
        "priors",
        "b",
        "auto",
        2,
        None,
    )
