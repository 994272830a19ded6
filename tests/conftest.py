"""Shared fixtures. Module-specific fixtures live next to their tests."""

from pathlib import Path

import pytest
import torch
from body.synthetic_model import write_synthetic_smpl_pkl


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_body_path(tmp_path_factory) -> Path:
    """A small random SMPL-layout body model .pkl (300 vertices, 10 betas, non-zero posedirs),
    written once per session; load it with ``BodyConfig(model_path=str(path))``."""
    return write_synthetic_smpl_pkl(tmp_path_factory.mktemp("body") / "synthetic_smpl.pkl")
