"""Motion capture files as motions ready to fit: BVH files, folders of them and ``.tar.xz``
archives, read safely (every problem an ``InputError`` naming the file or archive member), in
metres (``mocap.rigs``) and at ``MOTION_FPS`` where the rate allows; the fixed evaluation split
applies to the Bandai-Namco files only.
"""

import logging
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import READ_ERRORS, reason
from slahmr_opt.mocap.bvh import BvhMotion, parse_bvh, subsample, with_scale
from slahmr_opt.mocap.rigs import detect_rig
from slahmr_opt.mocap.targets import split_of

logger = logging.getLogger(__name__)

MOTION_FPS = 30.0
"""Frame rate of the filmed motions: mocap at a whole multiple of it (CMU's 120 fps) keeps every
n-th frame; other rates are kept as recorded (the sequence's ``fps`` says which)."""
BANDAI_FILE = re.compile(r"dataset-\d+_.+_\d+\.bvh")
"""Names of the Bandai-Namco files (the priors' training data; ``split_of`` applies)."""


def _bvh_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.bvh") if p.is_file())


def read_motion(data: bytes, where: str, name: str) -> BvhMotion:
    """One BVH file's motion in metres at ``MOTION_FPS`` where its rate allows (``mocap.rigs``:
    the rig, its units and axes); ``source`` is ``name``.

    Raises:
        InputError: naming ``where``: malformed, no frames, non-finite values, unknown rig.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    motion = parse_bvh(text, source=where, scale=1.0)
    rig = detect_rig(motion.skeleton, where)
    motion = with_scale(motion, rig.scale)
    ratio = motion.fps / MOTION_FPS
    if ratio > 1.5 and abs(ratio - round(ratio)) < 1e-3:
        motion = subsample(motion, round(ratio))
    if motion.num_frames < 2:
        raise InputError(where, f"has {motion.num_frames} frame at {motion.fps:g} fps; a "
                         "benchmark needs at least 2")  # fmt: skip
    motion.source = name
    return motion


def _split_refusal(where: Path | str) -> InputError:
    return InputError(where, "is a Bandai-Namco training file (take number does not end in 0); "
                      "benchmarks use evaluation files (--allow-train to override)")  # fmt: skip


def list_motions(paths: Sequence[str | Path], allow_train: bool = False) -> list[BvhMotion]:
    """Read the BVH motions of ``paths`` (BVH files, folders of them, or ``.tar.xz`` archives).

    The fixed evaluation split (``split_of``) applies to Bandai-Namco files only, the data the
    priors were trained on (known by their names, ``BANDAI_FILE``, or their skeleton): archives
    and folders contribute their evaluation files, and a training file named explicitly is
    refused (unless ``allow_train``). Every other rig's file is used.

    Returns:
        Motions in metres, sorted by source name.

    Raises:
        InputError: naming the file: a path is missing or unreadable, is not a BVH file, folder
            or archive, holds no usable BVH file, is malformed, or is a training file.
    """
    motions: dict[str, BvhMotion] = {}

    def take(data: bytes, where: str, name: str, explicit: bool) -> None:
        bandai_name = BANDAI_FILE.fullmatch(name) is not None
        if bandai_name and not allow_train and split_of(name) != "eval":
            if explicit:
                raise _split_refusal(where)
            return
        motion = read_motion(data, where, name)
        rig = detect_rig(motion.skeleton, where)
        if rig.has_split and not bandai_name and not allow_train:
            try:
                train = split_of(name) != "eval"
            except InputError:
                train = False  # no take number: the split cannot be told
            if train and explicit:
                raise _split_refusal(where)
            if train:
                return
        motions[name] = motion

    for path in map(Path, paths):
        before = len(motions)
        if not path.exists():
            raise InputError(path, "mocap path not found")
        if path.is_dir():
            files = _bvh_files(path)
            if not files:
                raise InputError(path, "folder holds no .bvh file")
            for f in files:
                take(_read_bytes(f), str(f), f.name, False)
        elif path.suffix.lower() == ".bvh":
            take(_read_bytes(path), str(path), path.name, True)
        else:
            _read_archive(path, take)
        if len(motions) == before:
            logger.warning("%s: no evaluation-split BVH file", path)
    if not motions:
        raise InputError(", ".join(map(str, paths)), "no usable (evaluation-split) BVH file")
    return [motions[k] for k in sorted(motions)]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({reason(exc)})") from None


def _read_archive(path: Path, take) -> None:
    """``take(bytes, where, name, False)`` for every ``.bvh`` member of the archive ``path``."""
    found = False
    try:
        if not tarfile.is_tarfile(path):
            raise InputError(path, "is not a .bvh file, a folder of them or a readable .tar.xz "
                             "archive")  # fmt: skip
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = Path(member.name).name
                if not (member.isfile() and name.lower().endswith(".bvh")):
                    continue
                found = True
                take(tar.extractfile(member).read(), f"{path}:{member.name}", name, False)
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(path, f"is not a readable archive ({reason(exc)})") from None
    if not found:
        raise InputError(path, "archive holds no .bvh file")
