"""Per-stage checkpoints of a solve, so that a killed job resumes after its last finished stage.

One file per stage, ``stage_{index:02d}_{name}.pt`` (``torch.save`` of a dict): ``key`` (the
cache key below), ``params`` (the solver's parameters after the stage and its after-hooks,
``dict[str, Tensor]``), ``history`` (the stage's ``IterRecord`` fields as dicts) and
``summary`` (the stage's summary dict, as in ``Result.stages``).

The key of stage ``i`` hashes the code version, the observations and the config of stages
``0..i`` (everything else in the config included), so a run with other inputs or settings
recomputes, and two configs that share their first stages share those checkpoints. Stage hook
fields left unset (``before`` / ``after`` None) are left out of the hashed config: checkpoints
written before the hooks were config fields keep their keys.

Files are written beside their name and renamed over it (``files.checks.write_atomic``), so a
job killed while saving leaves the previous file or none. A file that cannot be read or does not
hold a finished stage (truncated, corrupt, from a crash of older code) is reported with a warning
and the stage is recomputed; it never blocks a resume.
"""

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import Tensor

from slahmr_opt import __version__
from slahmr_opt.config import Config, StageConfig
from slahmr_opt.files.checks import reason, write_atomic
from slahmr_opt.history import IterRecord
from slahmr_opt.types import Observations, StageSummary

logger = logging.getLogger(__name__)

#: ``StageConfig`` fields left out of the key while they hold None (their default).
_UNSET_OPTIONAL = ("before", "after")


def observation_hash(obs: Observations) -> str:
    """SHA-1 (hex) of the measured data: keypoints, track mask, cameras and scene points."""
    h = hashlib.sha1()
    for t in (obs.kp2d, obs.track_mask, obs.cameras.R_w2c, obs.cameras.t_w2c, obs.cameras.intrins):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    if obs.points is not None:
        for t in (obs.points.points, obs.points.frames):
            if t is not None:
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _key_config_text(cfg: Config) -> str:
    """``config.to_yaml(cfg)`` without the stage fields of ``_UNSET_OPTIONAL`` that are None."""
    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    for stage in data["stages"]:
        for name in _UNSET_OPTIONAL:
            if stage.get(name, 0) is None:
                del stage[name]
    return OmegaConf.to_yaml(data)


def stage_key(obs_hash: str, cfg: Config, index: int) -> str:
    """Cache key (SHA-1 hex) of the state after stage ``index``: code version, inputs
    (``observation_hash``) and the config with its stages up to ``index``."""
    partial = replace(cfg, stages=cfg.stages[: index + 1])
    text = f"{__version__}\n{obs_hash}\n{_key_config_text(partial)}"
    return hashlib.sha1(text.encode()).hexdigest()


class StageCheckpoints:
    """The checkpoint files of one solve in ``directory`` (None: nothing is read or written).

    Args:
        directory: folder of the ``stage_*.pt`` files; created on the first save.
        obs: the observations of the solve (hashed into every key).
        cfg: the resolved config of the solve.
    """

    def __init__(self, directory: str | Path | None, obs: Observations, cfg: Config):
        self.directory = Path(directory) if directory else None
        self.cfg = cfg
        self._obs_hash = observation_hash(obs) if self.directory else ""

    def path(self, index: int, stage: StageConfig) -> Path | None:
        """File of stage ``index`` (None without a directory)."""
        if self.directory is None:
            return None
        return self.directory / f"stage_{index:02d}_{stage.name}.pt"

    def load(self, index: int) -> dict | None:
        """The checkpoint of stage ``index`` (keys ``params``, ``history``, ``summary``), or None
        if there is none or it was written for other inputs, settings or code."""
        path = self.path(index, self.cfg.stages[index])
        if path is None or not path.exists():
            return None
        try:
            ckpt = torch.load(path, weights_only=True)
            _check(ckpt)
        except Exception as exc:  # any failure to read it: the stage is simply recomputed
            logger.warning("checkpoint %s cannot be used (%s); recomputing the stage", path,
                           reason(exc))  # fmt: skip
            return None
        if ckpt.get("key") != stage_key(self._obs_hash, self.cfg, index):
            logger.info("checkpoint %s is for other inputs or settings; recomputing", path)
            return None
        logger.info("stage %s: resumed from %s", self.cfg.stages[index].name, path)
        return ckpt

    def save(
        self, index: int, params: dict[str, Tensor], history: list[dict], summary: dict
    ) -> None:
        """Write the state after stage ``index`` (no-op without a directory)."""
        path = self.path(index, self.cfg.stages[index])
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        key = stage_key(self._obs_hash, self.cfg, index)
        state = {"key": key, "params": params, "history": history, "summary": summary}
        write_atomic(path, lambda f: torch.save(state, f))


def _check(ckpt) -> None:
    """Raise ``ValueError`` unless ``ckpt`` holds a finished stage: a key, finite tensor
    parameters, history records and a summary row."""
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("key"), str):
        raise ValueError("not a stage checkpoint")
    params = ckpt.get("params")
    if not isinstance(params, dict) or not all(isinstance(v, Tensor) for v in params.values()):
        raise ValueError("its parameters are not tensors")
    if not all(bool(torch.isfinite(v).all()) for v in params.values()):
        raise ValueError("its parameters are not finite")
    for row in ckpt.get("history", None) or []:
        IterRecord(**row)
    if not isinstance(ckpt.get("history"), list):
        raise ValueError("its loss history is missing")
    StageSummary.from_dict(ckpt.get("summary"))
