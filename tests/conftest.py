"""Shared fixtures. Module-specific fixtures live next to their tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
