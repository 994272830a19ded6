"""Job functions of the batch tests (module-level, so pool and Ray workers can import them)."""

import json
import os
from pathlib import Path

from slahmr_opt.errors import InputError


def double(inputs: Path, out: Path, factor: int = 2) -> dict:
    """Reads ``n.txt``, writes ``twice.txt`` and ``sub/pid.json``; the record has the value."""
    value = int((inputs / "n.txt").read_text()) * factor
    (out / "twice.txt").write_text(str(value))
    (out / "sub").mkdir()
    (out / "sub" / "pid.json").write_text(json.dumps({"pid": os.getpid()}))
    return {"value": value, "pid": os.getpid()}


def bad_input(inputs: Path, out: Path) -> dict:
    raise InputError(inputs / "n.txt", "not a number")


def crash_once(inputs: Path, out: Path, counter: str) -> dict:
    """Fails with a RuntimeError the first time (a crash), then works."""
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls == 1:
        raise RuntimeError("worker crashed")
    return {"calls": calls}
