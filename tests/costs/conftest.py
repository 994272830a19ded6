"""Fixtures of the cost tests."""

import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model


@pytest.fixture(scope="module", params=["synthetic", "default"])
def body(request, synthetic_body_path):
    """float64 bodies: the synthetic one (non-zero pose blend shapes) and the built-in one
    (modules may define their own ``body``)."""
    path = str(synthetic_body_path) if request.param == "synthetic" else None
    model = load_body_model(BodyConfig(model_path=path), dtype=torch.float64)
    assert (model.kp_posedirs is not None) == (request.param == "synthetic")
    return model
