"""Fuzzed files for every loader of untrusted files: each mutated file loads or ends in an
``InputError``; nothing else escapes and the process never crashes (checked in a child process)."""

import io
import subprocess
import sys
import zipfile

import joblib
import numpy as np
import pytest
import torch
from fuzz_bytes import mutate

# loader name -> (module, function, extra arguments, suffix)
LOADERS = {
    "pickle": ("slahmr_opt.files.safe_pickle", "load_pickle", "'pickle', True", ".pkl"),
    "joblib_zlib": ("slahmr_opt.files.safe_pickle", "load_pickle", "'pickle'", ".pkl"),
    "npy_object": ("slahmr_opt.files.safe_pickle", "load_npy_object", "'npy', True", ".npy"),
    "npz_objects": ("slahmr_opt.files.safe_pickle", "load_npz_objects", "'npz'", ".npz"),
    "npz": ("slahmr_opt.files.checks", "load_npz", "'npz'", ".npz"),
    "body_model_npz": ("slahmr_opt.body.model_file", "load_model_dict", "", ".npz"),
}


def _seed(kind: str) -> bytes:
    """A valid file of each loader's format, with nested dicts, object and numeric arrays."""
    value = {"frame": {"tid": [1, 2], "bbox": np.arange(8.0).reshape(2, 4),
                       "names": ["a", "b"], "t": torch.arange(4.0)}}  # fmt: skip
    buf = io.BytesIO()
    if kind == "pickle":
        import pickle

        return pickle.dumps(value, protocol=2)
    if kind == "joblib_zlib":
        plain = {"frame": {k: v for k, v in value["frame"].items() if k != "t"}}
        joblib.dump(plain, buf, compress=("zlib", 3))
    elif kind == "npy_object":
        np.save(buf, np.array(value, dtype=object), allow_pickle=True)
    elif kind == "npz_objects":
        np.savez(buf, outputs=np.array({"a": np.ones(3)}, dtype=object), x=np.arange(5))
    elif kind == "body_model_npz":
        np.savez(buf, v_template=np.zeros((10, 3)), f=np.zeros((4, 3), np.int32),
                 kintree_table=np.zeros((2, 24), np.int64))  # fmt: skip
    else:
        np.savez(buf, kp=np.ones((2, 3, 17, 3)), mask=np.ones((2, 3), bool))
    return buf.getvalue()


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_fuzzed_files_load_or_raise_input_error(tmp_path, kind):
    module, func, extra, suffix = LOADERS[kind]
    rng = np.random.default_rng(len(kind))
    seed = _seed(kind)
    (tmp_path / f"seed{suffix}").write_bytes(seed)
    for i in range(150):
        (tmp_path / f"m{i:03d}{suffix}").write_bytes(mutate(seed, rng))
    for i in range(20):  # random bytes, some with the format's magic in front
        head = seed[:8] if i % 2 else b""
        noise = rng.integers(0, 256, int(rng.integers(0, 400))).astype(np.uint8).tobytes()
        (tmp_path / f"r{i:03d}{suffix}").write_bytes(head + noise)
    code = (
        "import sys, pathlib\n"
        f"from {module} import {func} as load\n"
        "from slahmr_opt.errors import InputError\n"
        "loaded = refused = 0\n"
        f"for p in sorted(pathlib.Path(sys.argv[1]).glob('*{suffix}')):\n"
        "    try:\n"
        f"        load(p, {extra})\n"
        "        loaded += 1\n"
        "    except InputError as exc:\n"
        "        assert str(p) in str(exc), exc\n"
        "        refused += 1\n"
        "print(loaded, refused)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    loaded, refused = map(int, run.stdout.split())
    assert loaded >= 1 and refused >= 20  # the seed loads; random bytes are refused


def test_a_zip_bomb_member_is_not_a_crash(tmp_path):
    """An .npz member that claims a huge array: refused, not allocated to exhaustion."""
    path = tmp_path / "big.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**6, 10**6)})  # fmt: skip
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("kp.npy", np.lib.format.MAGIC_PREFIX + b"\x01\x00" + header.getvalue()[8:])
    from slahmr_opt.errors import InputError
    from slahmr_opt.files.checks import load_npz

    with pytest.raises(InputError, match="big.npz"):
        load_npz(path, "tracks file")
