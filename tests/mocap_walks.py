"""Evaluation-split walks extracted from the shared Bandai-Namco archive, for benchmark tests."""

import tarfile
from pathlib import Path

import pytest

from slahmr_opt.mocap.targets import split_of

BANDAI_TAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap"
BANDAI_TAR = BANDAI_TAR / "bandai-namco-2.tar.xz"


def extract_eval_walks(dest: Path, count: int) -> list[Path]:
    """The first ``count`` evaluation-split walks of the archive, written into ``dest``; skips
    the test when the archive or enough walks are missing."""
    if not BANDAI_TAR.exists():
        pytest.skip(f"{BANDAI_TAR} not available")
    paths = []
    with tarfile.open(BANDAI_TAR, "r:*") as tar:
        for member in tar:
            name = Path(member.name).name
            if name.endswith(".bvh") and "_walk_" in name and split_of(name) == "eval":
                path = dest / name
                path.write_bytes(tar.extractfile(member).read())
                paths.append(path)
                if len(paths) == count:
                    return paths
    pytest.skip(f"fewer than {count} evaluation walks in the archive")
