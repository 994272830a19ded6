"""Readers of other methods' outputs, as per-person camera-frame bodies (``ToolPerson``).

``slahmr-opt fit --init KIND:PATH`` starts the fit from one of them (``slahmr_opt.init.external``).
Each reader documents the exact layout it reads and the source file it was taken from:

=======  ====================================  ==========================================
kind     PATH                                  reader
=======  ====================================  ==========================================
wham     ``wham_output.pkl`` (joblib)          ``initializers.wham.read_wham``
trace    ``<seq>.npz`` (``outputs``)           ``initializers.trace.read_trace``
gvhmr    ``hmr4d_results.pt`` (torch)          ``initializers.gvhmr.read_gvhmr``
tram     ``results/<seq>/`` folder             ``initializers.tram.read_tram``
slahmr   ``<stage>/<seq>_<iter>_world_results.npz``  ``slahmr_results.slahmr_people``
=======  ====================================  ==========================================

Pickled content (WHAM, TRAM, TRACE) goes through ``files.safe_pickle``; GVHMR's torch file
through ``torch.load(weights_only=True)``. Every problem is an ``InputError`` naming the file.
"""

from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import MAX_TRANSLATION, check_range
from slahmr_opt.inputs.initializers.common import (
    REST_PELVIS,
    ToolPerson,
    check_frames_increasing,
)
from slahmr_opt.inputs.initializers.gvhmr import read_gvhmr
from slahmr_opt.inputs.initializers.trace import read_trace
from slahmr_opt.inputs.initializers.tram import read_tram
from slahmr_opt.inputs.initializers.wham import read_wham

INIT_KINDS = {
    "wham": "WHAM's wham_output.pkl (demo.py --save_pkl)",
    "trace": "TRACE's <seq>.npz (trace2 -i VIDEO)",
    "gvhmr": "GVHMR's hmr4d_results.pt (tools/demo/demo.py)",
    "tram": "TRAM's results/<seq>/ folder (hps/hps_track_*.npy + camera.npy)",
    "slahmr": "SLAHMR's <stage>/<seq>_<iter>_world_results.npz",
}
"""Initializer kinds accepted by ``--init KIND:PATH``, with what PATH must be."""

_READERS = {"wham": read_wham, "trace": read_trace, "gvhmr": read_gvhmr, "tram": read_tram}


def parse_init_spec(spec: str) -> tuple[str, Path]:
    """Split ``"KIND:PATH"`` and check both parts.

    Returns:
        The lower-case kind (an ``INIT_KINDS`` key) and the path.

    Raises:
        InputError: no ``:``, an unknown kind, or a path that does not exist (names the path).
    """
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InputError(spec, f"--init expects KIND:PATH with KIND one of {list(INIT_KINDS)}")
    kind, path = kind.strip().lower(), Path(rest).expanduser()
    if kind not in INIT_KINDS:
        raise InputError(path, f"unknown initializer kind {kind!r}; expected one of "
                         f"{list(INIT_KINDS)}")  # fmt: skip
    if not path.exists():
        raise InputError(path, f"{INIT_KINDS[kind]} not found")
    if kind == "tram" and not path.is_dir() and path.suffix != ".npy":
        raise InputError(path, f"expected {INIT_KINDS[kind]}")
    if kind != "tram" and not path.is_file():
        raise InputError(path, f"expected a file: {INIT_KINDS[kind]}")
    return kind, path


def read_initializer(
    kind: str, path: str | Path, image_size: tuple[int, int], frame_offset: int = 0
) -> list[ToolPerson]:
    """The people of one method's output, in that method's camera frames.

    Args:
        kind: an ``INIT_KINDS`` key.
        path: the output file or folder.
        image_size: ``(height, width)`` of the video (WHAM's and TRACE's cameras depend on it).
        frame_offset: SLAHMR files without ``track_info.json``: the video frame of their frame 0.

    Raises:
        InputError: unknown kind, or a missing or malformed file (names it).
    """
    path = Path(path)
    if kind == "slahmr":
        from slahmr_opt.inputs.initializers.slahmr_results import slahmr_people

        people = slahmr_people(path, frame_offset)
    elif kind in _READERS:
        people = _READERS[kind](path, image_size)
    else:
        raise InputError(path, f"unknown initializer kind {kind!r}; expected one of "
                         f"{list(INIT_KINDS)}")  # fmt: skip
    if not people:
        raise InputError(path, f"{INIT_KINDS[kind]} holds no people")
    check_frames_increasing(people, path)
    for person in people:
        check_range(np.abs(person.pelvis_c), path, f"person {person.person_id} pelvis",
                    high=MAX_TRANSLATION, what="coordinates", unit=" m")  # fmt: skip
    return people


__all__ = [
    "INIT_KINDS",
    "REST_PELVIS",
    "ToolPerson",
    "parse_init_spec",
    "read_initializer",
]
