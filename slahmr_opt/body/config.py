"""Choosing and loading a body model: ``BodyConfig`` -> ``load_body_model``."""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from slahmr_opt.body.model import BodyModel
from slahmr_opt.body.model_file import load_model_dict, num_joints_of, validate_smpl_layout
from slahmr_opt.body.native import NativeBodyModel
from slahmr_opt.body.smplx_backend import NUM_JOINTS_OF_TYPE, SmplxBodyModel
from slahmr_opt.errors import ConfigError, InputError

log = logging.getLogger(__name__)

MODEL_TYPES = ("smpl", "smplh", "smplx")
GENDERS = ("neutral", "male", "female")
BACKENDS = ("auto", "native", "smplx")


@dataclass
class BodyConfig:
    """Which body model to use."""

    model_path: str | None = None
    """A model file (.pkl or .npz), or a folder holding smplx-named files (SMPL_NEUTRAL.pkl,
    SMPLH_MALE.pkl, SMPLX_FEMALE.npz, ... directly or in a subfolder named after model_type).
    None: the built-in default model (SMPL layout, CC0, see slahmr_opt/body/data/README.md)."""
    model_type: str = "smpl"
    """'smpl' (24 joints), 'smplh' (SMPL+H, 52) or 'smplx' (SMPL-X, 55)."""
    gender: str = "neutral"
    """'neutral', 'male' or 'female': picks the file in a model_path folder."""
    num_betas: int = 10
    """Shape coefficients used (capped at what the model file provides)."""
    backend: str = "auto"
    """'auto' (native for SMPL-layout 24-joint files, smplx otherwise), 'native' or 'smplx'."""


def default_body_path() -> Path:
    """The shipped default body model file (independent of the working directory)."""
    return Path(__file__).resolve().parent / "data" / "default_body.pkl"


def _check_config(cfg: BodyConfig) -> None:
    for name, value, allowed in (("model_type", cfg.model_type, MODEL_TYPES),
                                 ("gender", cfg.gender, GENDERS),
                                 ("backend", cfg.backend, BACKENDS)):  # fmt: skip
        if value not in allowed:
            raise ConfigError(f"body.{name} = {value!r}; expected one of {list(allowed)}")
    if cfg.num_betas < 1:
        raise ConfigError(f"body.num_betas = {cfg.num_betas}; expected >= 1")
    if cfg.model_path is None and cfg.model_type != "smpl":
        raise ConfigError(
            f"body.model_type = {cfg.model_type!r} needs body.model_path; the built-in model is "
            "SMPL-layout (model_type 'smpl')"
        )


def resolve_model_file(cfg: BodyConfig) -> Path:
    """The model file ``cfg`` points at (a file as is; in a folder, smplx's file name).

    Raises:
        InputError: the path or the file expected in the folder does not exist.
    """
    if cfg.model_path is None:
        return default_body_path()
    path = Path(cfg.model_path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputError(path, "body model file or folder not found")
    stem = f"{cfg.model_type.upper()}_{cfg.gender.upper()}"
    exts = ("npz", "pkl") if cfg.model_type == "smplx" else ("pkl", "npz")
    candidates = [d / f"{stem}.{e}" for d in (path, path / cfg.model_type) for e in exts]
    for c in candidates:
        if c.is_file():
            return c
    names = ", ".join(str(c.relative_to(path)) for c in candidates)
    raise InputError(path, f"folder holds none of {names}")


def body_model_record(model: BodyModel, cfg: BodyConfig | None = None) -> dict:
    """What a result records about the body model it was fitted with: ``type``, ``gender``,
    ``num_betas``, and, when ``cfg`` is the config ``model`` was loaded from, the model
    ``file`` name, its ``sha256`` and whether it is the ``builtin`` model (whose betas are not
    SMPL's); "" and False where unknown."""
    record = {"type": model.model_type, "gender": model.gender, "num_betas": model.num_betas,
              "file": "", "sha256": "", "builtin": False}  # fmt: skip
    if cfg is not None:
        path = resolve_model_file(cfg)
        record.update(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                      builtin=cfg.model_path is None)  # fmt: skip
    return record


def load_body_model(cfg: BodyConfig, dtype: torch.dtype = torch.float32) -> BodyModel:
    """Load the body model ``cfg`` describes.

    Args:
        cfg: the body settings.
        dtype: floating point type of the model data and outputs.
    Raises:
        ConfigError: an invalid setting.
        InputError: a missing or malformed model file (the message names it).
    """
    _check_config(cfg)
    path = resolve_model_file(cfg)
    data = load_model_dict(path)
    validate_smpl_layout(data, path)
    nj = num_joints_of(data, path)
    if nj != NUM_JOINTS_OF_TYPE[cfg.model_type]:
        raise InputError(path, f"has {nj} joints; model_type {cfg.model_type!r} has "
                         f"{NUM_JOINTS_OF_TYPE[cfg.model_type]}")  # fmt: skip
    backend = cfg.backend
    if backend == "auto":
        backend = "native" if nj == NUM_JOINTS_OF_TYPE["smpl"] else "smplx"
    log.info("body model %s (%s, %s, backend %s)", path, cfg.model_type, cfg.gender, backend)
    if backend == "native":
        return NativeBodyModel(data, path, cfg.num_betas, cfg.model_type, cfg.gender, dtype)
    return SmplxBodyModel(data, path, cfg.model_type, cfg.gender, cfg.num_betas, dtype)
