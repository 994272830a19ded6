"""Speed of ``slahmr-opt render`` on the bundled example (150 frames, 1280 x 720 input).

Each configuration (output width, with or without input frames, llvmpipe threads) runs in a
fresh Python process, so that ``LP_NUM_THREADS`` takes effect and nothing is warm. Reported per run:
frames per second of the frame loop (posing, drawing both views, compositing, encoding), the
share of it spent inside the OpenGL draws, and the set-up seconds (imports, body model,
OpenGL context). With ``--video``, a 1280 x 720 test video is decoded under the meshes.

    .venv/bin/python bench/render_speed.py [--results results.npz] [--widths 1920 1280]
                                           [--threads 0 1] [--out FILE]

Without ``--results`` the bundled example is fitted first (``slahmr-opt demo``, about a
minute). ``--threads 0`` leaves llvmpipe's default (one thread per core).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slahmr_opt.io.results import cpu_name

REPO = Path(__file__).resolve().parents[1]


def _write_test_video(path: Path, num_frames: int, size: tuple[int, int]) -> None:
    """A moving colour gradient, ``size`` = (height, width)."""
    from slahmr_opt.files.video import Mp4Writer

    H, W = size
    y, x = np.mgrid[0:H, 0:W]
    with Mp4Writer(path, size, 30) as writer:
        for t in range(num_frames):
            r = (x + 4 * t) % 256
            g = (y + 2 * t) % 256
            writer.write(np.stack([r, g, np.full_like(r, 128)], -1).astype(np.uint8))
        writer.commit()


def _run(job: dict) -> dict:
    """One render in this (fresh) process; ``job`` holds results, width, video, threads."""
    if job["threads"]:
        os.environ["LP_NUM_THREADS"] = str(job["threads"])
    start = time.perf_counter()
    from slahmr_opt.files.video import FrameReader
    from slahmr_opt.io.bodies import result_body_model
    from slahmr_opt.io.results import read_result
    from slahmr_opt.render import backend
    from slahmr_opt.render.render import RenderOptions, render_result

    gl_seconds = [0.0]
    info = {}
    draw = backend.Renderer.render

    def timed_draw(self, *args, **kwargs):
        if not info:
            info.update(self.gl_info())
        t0 = time.perf_counter()
        out = draw(self, *args, **kwargs)
        gl_seconds[0] += time.perf_counter() - t0
        return out

    backend.Renderer.render = timed_draw
    result = read_result(job["results"])
    body_model = result_body_model(result, source=job["results"])
    reader = FrameReader(video=job["video"]) if job["video"] else None
    with tempfile.TemporaryDirectory() as tmp:
        report = render_result(
            result, body_model, Path(tmp) / "out.mp4", reader,
            RenderOptions(width=job["width"], progress=False),
        )  # fmt: skip
    total = time.perf_counter() - start
    return {
        "width": report.size[1],
        "height": report.size[0],
        "input": "video 1280x720" if job["video"] else "none",
        "lp_num_threads": job["threads"] or "default",
        "frames": report.num_frames,
        "loop_seconds": round(report.seconds, 2),
        "fps": round(report.fps, 2),
        "gl_draw_share": round(gl_seconds[0] / report.seconds, 3),
        "setup_seconds": round(total - report.seconds, 2),
        "gl": info,
    }


def _fit_example(out: Path) -> Path:
    from slahmr_opt.cli import main

    if main(["demo", "--out", str(out), "--quiet", "--overwrite"]) not in (0, None):
        raise SystemExit("the demo fit failed")
    return out / "results.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", help="a results.npz of the bundled example")
    parser.add_argument("--widths", type=int, nargs="+", default=[1920, 1280])
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="LP_NUM_THREADS")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "render_speed.json"))
    parser.add_argument("--job", help=argparse.SUPPRESS)  # one run, in a child process
    args = parser.parse_args()
    if args.job:
        print(json.dumps(_run(json.loads(args.job))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = Path(args.results) if args.results else _fit_example(tmp / "demo")
        video = tmp / "input.mp4"
        _write_test_video(video, 150, (720, 1280))
        jobs = [
            {"results": str(results), "width": w, "video": v, "threads": n}
            for n in args.threads
            for w in args.widths
            for v in (None, str(video))
        ]
        runs = []
        load = os.getloadavg()[0]
        for job in jobs:
            child = subprocess.run(
                [sys.executable, __file__, "--job", json.dumps(job)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"{row['width']}x{row['height']}, input {row['input']}, threads "
                f"{row['lp_num_threads']}: {row['fps']:.1f} frames/s "
                f"({row['gl_draw_share']:.0%} in OpenGL draws)"
            )
            runs.append(row)

    from OpenGL import version as gl_version

    from slahmr_opt.render.backend import import_pyrender

    pyrender = import_pyrender()

    report = {
        "what": "slahmr-opt render on the bundled example (150 frames, 1280x720 input)",
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min_at_start": round(load, 2),
        },
        "versions": {"pyrender": pyrender.__version__, "PyOpenGL": gl_version.__version__},
        "note": "fps: frame loop only (posing, both views, compositing, H.264 encoding)",
        "runs": runs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
