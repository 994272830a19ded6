"""Several videos through ``slahmr-opt run`` as batch jobs (``experiments.batch``).

Each video is one job named after the file (``walk.mp4`` -> ``walk``; names made unique), its
bytes its input, the resolved config and front-end settings its arguments; the key is the
config's and the video's hashes, so a rerun skips a video already done with the same config.
"""

import hashlib
from pathlib import Path

from slahmr_opt.config import Config, load_config, to_yaml
from slahmr_opt.errors import InputError
from slahmr_opt.experiments.batch import Job
from slahmr_opt.run import FrontEndSettings, run_video


def video_job(inputs: Path, out: Path, video: str, config_yaml: str,
              settings: FrontEndSettings, render: bool) -> dict:  # fmt: skip
    """A batch job: ``run_video`` on ``inputs/video`` into ``out``; returns the summary row
    (``people``, ``frames``, ``camera``, ``world_scale``, ``seconds`` per step)."""
    config = inputs.parent / f"{inputs.name}.config.yaml"
    config.write_text(config_yaml)
    report = run_video(inputs / video, out, load_config(config), settings, progress=False,
                       render=render)  # fmt: skip
    return {
        "people": report.num_people,
        "frames": report.num_frames,
        "camera": "static" if report.is_static else "moving",
        "world_scale": report.world_scale,
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
    }


def video_jobs(videos: list[Path], cfg: Config, settings: FrontEndSettings,
               render: bool) -> list[Job]:  # fmt: skip
    """One ``video_job`` per video (module docstring).

    Raises:
        InputError: a video is missing.
    """
    text = to_yaml(cfg)
    jobs, names = [], set()
    for video in videos:
        if not video.is_file():
            raise InputError(video, "video not found")
        name, n = video.stem or "video", 1
        while name in names:
            n += 1
            name = f"{video.stem}_{n}"
        names.add(name)
        data = video.read_bytes()
        key = hashlib.sha256(text.encode() + hashlib.sha256(data).digest()).hexdigest()[:16]
        kwargs = {"video": video.name, "config_yaml": text, "settings": settings,
                  "render": render}  # fmt: skip
        jobs.append(Job(name, video_job, {video.name: data}, kwargs, key))
    return jobs
