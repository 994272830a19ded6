"""Output folders: one run at a time (a lock the kernel releases when the holder dies), checked
for writing before any work, existing results kept unless asked, and no half-written files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slahmr_opt.errors import OutputError
from slahmr_opt.files.outputs import LOCK_NAME, check_writable, claimed_output

GOLDEN = Path(__file__).resolve().parents[1] / "io/data/main_36f2ef3/results.npz"
HOLD = (
    "import sys, time\n"
    "from slahmr_opt.files.outputs import claimed_output\n"
    "with claimed_output(sys.argv[1], overwrite=False):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    with claimed_output(tmp_path / "out", overwrite=False):
        with pytest.raises(OutputError, match=r"in use by another run \(pid \d+ on .* since"):
            with claimed_output(tmp_path / "out", overwrite=True):
                pass
    with claimed_output(tmp_path / "out", overwrite=False):  # released: usable again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"pid {child.pid}"):
            with claimed_output(out, overwrite=False):
                pass
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(0.1)
    with claimed_output(out, overwrite=False):
        assert (out / LOCK_NAME).exists()


def test_existing_results_are_kept_unless_overwrite(tmp_path):
    (tmp_path / "results.npz").write_bytes(b"old")
    with pytest.raises(OutputError, match="results.npz: exists; pass --overwrite"):
        with claimed_output(tmp_path, overwrite=False):
            pass
    with claimed_output(tmp_path, overwrite=True):
        pass
    assert (tmp_path / "results.npz").read_bytes() == b"old"


def test_an_unwritable_folder_is_one_error_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file/out: cannot write the output folder"):
        check_writable(blocker / "out")
    with pytest.raises(OutputError):
        with claimed_output(blocker / "out", overwrite=True):
            pytest.fail("must not get here")


def test_write_result_checks_again_and_leaves_no_temporary_files(tmp_path):
    from slahmr_opt.io.results import read_result, write_result

    result = read_result(GOLDEN)
    write_result(result, tmp_path / "b")
    with pytest.raises(OutputError, match="exists"):
        write_result(result, tmp_path / "b", overwrite=False)
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.endswith(".tmp")]


def test_a_killed_runs_temporary_files_are_removed_and_others_kept(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / ".results.npz.1k834whh.tmp",
             tmp_path / "checkpoints/.stage_01.pt.p_yq1rq5.tmp"]  # fmt: skip
    kept = [tmp_path / "notes.tmp", tmp_path / ".results.npz.short.tmp"]
    for path in (*stale, *kept):
        path.write_bytes(b"x")
    with claimed_output(tmp_path, overwrite=False):
        assert not any(p.exists() for p in stale)
        assert all(p.exists() for p in kept)
