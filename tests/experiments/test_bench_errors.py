"""``bench make`` / ``bench run`` bad inputs through the CLI: exit 2, one line naming the file,
no ``index.json`` or ``metrics.json`` left behind; the CMU excerpt makes a benchmark."""

import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest

from slahmr_opt.cli.main import main
from slahmr_opt.experiments.bench_run import score_sequences

CMU = Path(__file__).resolve().parents[1] / "mocap" / "data" / "cmu_01_03_excerpt.bvh"


def _lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def _bvh(tmp_path: Path, name: str, edit) -> Path:
    path = tmp_path / name
    path.write_text(edit(CMU.read_text()))
    return path


def _tar_xz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _frames_zero(text: str) -> str:
    head = text[: text.index("Frames:")]
    return head + "Frames: 0\nFrame Time: .0083333\n"


def _mocap_cases(tmp_path: Path) -> list[tuple[list[str], str, str]]:
    """(--mocap paths, file named in the message, problem)."""
    cmu = CMU.read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    bad_tar = tmp_path / "notes.tar.xz"
    bad_tar.write_bytes(b"not an archive at all" * 10)
    empty_tar = _tar_xz(tmp_path / "empty.tar.xz", {})
    full = _tar_xz(tmp_path / "cut.tar.xz", {"d/01_01.bvh": CMU.read_bytes()}).read_bytes()
    cut_tar = tmp_path / "cut.tar.xz"
    cut_tar.write_bytes(full[: len(full) // 2])
    cases = [
        (_bvh(tmp_path, "trunc.bvh", lambda t: t[: len(t) - 3000]), "trunc.bvh", "truncated"),
        (_bvh(tmp_path, "nan.bvh", lambda t: t.replace("-18.8972", "nan", 1)), "nan.bvh",
         "not a finite number"),
        (_bvh(tmp_path, "zero.bvh", _frames_zero), "zero.bvh", "no motion frames"),
        (_bvh(tmp_path, "odd.bvh", lambda t: t.replace("JOINT LeftLeg", "JOINT Bone7")),
         "odd.bvh", "cannot map the SMPL joints ['left_knee']"),
        (_bvh(tmp_path, "nomotion.bvh", lambda t: t[: t.index("MOTION")]), "nomotion.bvh",
         "no MOTION section"),
        (empty, "empty", "folder holds no .bvh file"),
        (empty_tar, "empty.tar.xz", "archive holds no .bvh file"),
        (bad_tar, "notes.tar.xz", "is not a .bvh file, a folder of them or a readable"),
        (cut_tar, "cut.tar.xz", "is not a readable archive"),
        (_tar_xz(tmp_path / "inner.tar.xz", {"x/a_1.bvh": cmu[:-3000].encode()}),
         "inner.tar.xz:x/a_1.bvh", "truncated"),
        (tmp_path / "missing.bvh", "missing.bvh", "mocap path not found"),
    ]  # fmt: skip
    assert lzma  # the archives are xz-compressed, as the Bandai-Namco archive
    return [([str(p)], str(where), problem) for p, where, problem in cases]


def test_bench_make_bad_mocap_exit_2_one_line(tmp_path, capsys):
    for argv_mocap, where, problem in _mocap_cases(tmp_path):
        out = tmp_path / "out"
        code = main(["bench", "make", "--mocap", *argv_mocap, "--out", str(out),
                     "--camera", "static", "--max-frames", "4"])  # fmt: skip
        err = _lines(capsys)
        assert code == 2 and len(err) == 1, (where, err)
        assert where in err[0] and problem in err[0], err
        assert not (out / "index.json").exists()


@pytest.fixture(scope="module")
def cmu_bench(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cmu") / "bench"
    mocap = out.parent / "01_01.bvh"
    mocap.write_bytes(CMU.read_bytes())
    assert main(["bench", "make", "--mocap", str(mocap), "--out", str(out), "--camera",
                 "static", "--max-frames", "4"]) == 0  # fmt: skip
    return out


def test_cmu_bvh_makes_a_benchmark(cmu_bench):
    index = json.loads((cmu_bench / "index.json").read_text())
    (entry,) = index["sequences"]
    assert entry["name"] == "000_static_01_01" and entry["fps"] == 30.0 and entry["frames"] == 4
    meta = json.loads((cmu_bench / entry["name"] / "meta.json").read_text())
    assert meta["sources"] == ["01_01.bvh"] and meta["fit_residual_mm"][0] < 60


def test_bench_make_output_errors(cmu_bench, tmp_path, capsys):
    mocap = str(cmu_bench.parent / "01_01.bvh")
    make = ["bench", "make", "--mocap", mocap, "--camera", "static", "--max-frames", "4"]
    assert main([*make, "--out", str(cmu_bench)]) == 2
    (err,) = _lines(capsys)
    assert f"{cmu_bench / 'index.json'}: exists; pass --overwrite" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([*make, "--out", str(blocker / "sub")]) == 2
    (err,) = _lines(capsys)
    assert str(blocker / "sub") in err and "cannot be created" in err
    assert main([*make, "--out", str(tmp_path / "o"), "--max-frames", "1"]) == 2
    (err,) = _lines(capsys)
    assert "--max-frames must be at least 2, got 1" in err
    assert not (tmp_path / "o" / "index.json").exists()


def _bench_copy(src: Path, dest: Path, index) -> Path:
    dest.mkdir()
    for seq in src.iterdir():
        if seq.is_dir():
            (dest / seq.name).mkdir()
            for f in seq.iterdir():
                (dest / seq.name / f.name).write_bytes(f.read_bytes())
    if index is not None:
        text = index if isinstance(index, str) else json.dumps(index)
        (dest / "index.json").write_text(text)
    return dest


def test_bench_run_bad_index_exit_2_no_metrics(cmu_bench, tmp_path, capsys):
    good = json.loads((cmu_bench / "index.json").read_text())
    name = good["sequences"][0]["name"]
    cases = [
        (None, "index.json", "benchmark index not found"),
        ("{not json", "index.json", "benchmark index is not valid JSON"),
        ("[]", "index.json", "benchmark index is not a JSON object"),
        (good | {"sequences": []}, "index.json", "lists no sequences"),
        ({"seed": 0}, "index.json", "lists no sequences"),
        (good | {"sequences": [{"name": "../elsewhere"}]}, "index.json",
         "sequence 0: 'name' must be a folder name"),
        (good | {"sequences": [{"camera": "static"}]}, "index.json", "'name' must be a folder"),
        (good | {"sequences": [{"name": "gone"}]}, "gone/meta.json",
         "sequence meta file not found"),
    ]  # fmt: skip
    for k, (index, where, problem) in enumerate(cases):
        bench = _bench_copy(cmu_bench, tmp_path / f"b{k}", index)
        out = tmp_path / f"o{k}"
        assert main(["bench", "run", "--bench", str(bench), "--out", str(out)]) == 2
        err = _lines(capsys)
        assert len(err) == 1 and str(bench / where) in err[0] and problem in err[0], err
        assert not out.exists()  # refused before any work: no folder, no metrics.json
    bench = _bench_copy(cmu_bench, tmp_path / "nogt", good)
    (bench / name / "tracks.npz").unlink()
    assert main(["bench", "run", "--bench", str(bench), "--out", str(tmp_path / "on")]) == 2
    (err,) = _lines(capsys)
    assert f"{bench / name / 'tracks.npz'}: tracks file not found" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["bench", "run", "--bench", str(cmu_bench), "--out", str(blocker / "o")]) == 2
    (err,) = _lines(capsys)
    assert str(blocker / "o") in err and "cannot write the output folder" in err
    assert main(["bench", "run", "--video", "--bench", str(cmu_bench), "--out", "x"]) == 2
    (err,) = _lines(capsys)
    assert "is not a rendered-video benchmark" in err


def test_unreadable_score_is_scored_again(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "score.json").write_text('{"config_hash": "h", "fra')  # a killed write
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "score.json").write_text('{"config_hash": "h", "frames": 7}')
    index = {"sequences": [{"name": "a"}, {"name": "b"}]}
    rows = score_sequences(index, tmp_path, "h", lambda name: {"frames": 1, "new": name}, "t")
    assert rows == {"a": {"frames": 1, "new": "a"}, "b": {"config_hash": "h", "frames": 7}}
