"""Output folders that two runs cannot share and that never hold half a result.

``claimed_output(out, overwrite)`` is held for the whole of a command that writes results:

* the folder is created and checked for writing before any work (an unwritable ``--out`` is one
  ``OutputError`` at the start, not a traceback after an hour of solving);
* a lock (``fcntl.flock`` on ``out/.slahmr-opt.lock``, released by the kernel even when the
  process is killed) keeps a second run out; it is refused naming the holder (pid, host, start);
* existing results are refused unless ``overwrite`` (``write_result`` checks again when it
  writes);
* temporary files a killed run left in ``out`` (``checks.write_atomic``'s ``.NAME.XXXXXXXX.tmp``)
  are removed: nobody else can be writing them while the lock is held.

``check_output_file`` and ``check_output_folder`` do the same checks (writable, not replacing
anything without ``overwrite``) for commands that write one file or a folder of exports, without
creating anything, so that a refused command leaves nothing behind.

Every file is written beside its name and renamed over it (``checks.write_atomic``: unique
temporary names), and ``results.npz`` is written last, so a folder with ``results.npz`` holds
one complete result.
"""

import datetime
import fcntl
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slahmr_opt.errors import OutputError
from slahmr_opt.files.checks import reason

LOCK_NAME = ".slahmr-opt.lock"
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # checks.write_atomic's names

log = logging.getLogger(__name__)


def _remove_temporaries(out: Path) -> None:
    """Remove the temporary files of ``checks.write_atomic`` under ``out`` (a killed run's)."""
    stale = [p for p in out.rglob("*.tmp") if _TEMPORARY.match(p.name) and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) a killed run left in %s", len(stale), out)


def check_writable(out: Path) -> Path:
    """Create ``out`` (with parents) and check that a file can be written in it.

    Raises:
        OutputError: it cannot be created or written (the reason).
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise OutputError(out, f"cannot write the output folder ({reason(exc)})") from None
    return out


def _check_creatable(path: Path, folder: bool = False) -> None:
    """The file (or ``folder``) ``path`` can be made: the nearest existing folder on its way
    (the folder itself if it exists) is a folder in which a file can be written. Creates
    nothing."""
    ancestor = path if folder else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(path, f"cannot be created: {ancestor} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as exc:
        raise OutputError(path, f"cannot be written: {ancestor} is not writable "
                          f"({reason(exc)})") from None  # fmt: skip


def check_output_file(path: str | Path, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """Check, before any work, that a command can write the file ``path``; creates nothing.

    Args:
        path: the output file.
        overwrite: an existing file may be replaced.
        suffixes: the endings the file must have (lower case, e.g. ``(".mp4",)``); () for any.

    Raises:
        OutputError: wrong ending, a folder, exists without ``overwrite``, or its folder cannot
            be created or written.
    """
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(path, f"the output must be a file ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise OutputError(path, "is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(path, "exists; pass --overwrite to replace it")
    _check_creatable(path)
    return path


def check_output_folder(path: str | Path, overwrite: bool) -> Path:
    """Check, before any work, that a command can write files into the folder ``path``; creates
    nothing.

    Args:
        path: the output folder.
        overwrite: a non-empty folder may be written into (its files replaced).

    Raises:
        OutputError: a file, a non-empty folder without ``overwrite``, or it cannot be created
            or written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, "is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(path, "exists and is not empty; pass --overwrite to write into it")
    _check_creatable(path, folder=True)
    return path


def check_claimable(out: str | Path, overwrite: bool, product: str = "results.npz") -> Path:
    """``claimed_output``'s checks without creating anything or taking the lock: for commands
    that read their inputs first (a refused command then leaves no empty folder behind).

    Raises:
        OutputError: ``out`` cannot be created or written, or ``product`` exists without
            ``overwrite``.
    """
    out = Path(out)
    _check_creatable(out, folder=True)
    if not overwrite and (out / product).exists():
        raise OutputError(out / product, "exists; pass --overwrite to replace it")
    return out


@contextmanager
def claimed_output(
    out: str | Path, overwrite: bool, product: str = "results.npz"
) -> Iterator[Path]:
    """Hold ``out`` for one run (module docstring).

    Args:
        out: the output folder.
        overwrite: replace ``out/product`` if it exists.
        product: the file whose presence means the folder holds a finished result.

    Raises:
        OutputError: not writable, in use by another run, or ``product`` exists without
            ``overwrite``.
    """
    out = check_writable(Path(out))
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise OutputError(out, f"is in use by another run ({holder}); wait for it to "
                              "finish or choose another output folder") from None  # fmt: skip
        since = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}".encode(), 0)
        if not overwrite and (out / product).exists():
            raise OutputError(out / product, "exists; pass --overwrite to replace it")
        _remove_temporaries(out)
        yield out
    finally:
        os.close(fd)  # releases the lock
