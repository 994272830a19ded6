"""File names and atomic writes shared by the exporters."""

from pathlib import Path

from slahmr_opt.files.checks import write_atomic


def safe_name(track_id: str) -> str:
    """A track id usable in a file or node name (letters, digits, ``-`` and ``_`` kept)."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(track_id))
    return cleaned or "track"


def person_names(track_ids: list[str]) -> list[str]:
    """``person_<id>`` per track (``person_<index>_<id>`` where two ids clean to one name)."""
    names = [f"person_{safe_name(t)}" for t in track_ids]
    if len(set(names)) < len(names):
        names = [f"person_{p}_{safe_name(t)}" for p, t in enumerate(track_ids)]
    return names


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, with a new file's usual permissions."""
    write_atomic(path, lambda f: f.write(data))
