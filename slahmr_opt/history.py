"""Loss history: one record per solver iteration with every term's value (DataFrames, plots)."""

import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IterRecord:
    """One iteration of one stage.

    Attributes:
        stage: stage name.
        iteration: 0 is the state before the first step.
        total: total weighted loss (SLAHMR's units: a weighted sum of squares).
        terms: each weighted term's value.
        wall_time: seconds since the stage started.
        info: solver extras (LM damping, rejected steps, L-BFGS evaluations).
    """

    stage: str
    iteration: int
    total: float
    terms: dict[str, float]
    wall_time: float
    info: dict[str, float] = field(default_factory=dict)


class LossHistory:
    """Per-iteration, per-term records of every stage of a solve.

    ``to_dataframe()`` gives one row per iteration (columns ``stage, iteration, wall_time, total``,
    one column per term, solver extras); ``plot()`` draws every term on a log scale with stage
    boundaries; ``save()`` writes CSV.

    Args:
        on_record: called as ``on_record(history, record)`` after every record is added (a
            live view of a long solve: ``FollowJob`` keeps ``history.csv`` and ``progress.json`` up
            to date).
    """

    def __init__(self, on_record: Callable[["LossHistory", IterRecord], None] | None = None):
        self.records: list[IterRecord] = []
        self.on_record = on_record
        self._stage_start = time.perf_counter()

    def start_stage(self) -> None:
        self._stage_start = time.perf_counter()

    def add(
        self, stage: str, iteration: int, total: float, terms: dict[str, float], **info
    ) -> None:
        record = IterRecord(
            stage, iteration, total, dict(terms), time.perf_counter() - self._stage_start, info
        )
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(self, record)

    def __len__(self) -> int:
        return len(self.records)

    def rows(self) -> list[dict]:
        rows = []
        for r in self.records:
            row = {"stage": r.stage, "iteration": r.iteration, "wall_time": r.wall_time}
            row["total"] = r.total
            row.update(r.terms)
            row.update(r.info)
            rows.append(row)
        return rows

    def to_dataframe(self):
        """A pandas DataFrame, one row per iteration."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def final(self, stage: str) -> IterRecord | None:
        """The last record of ``stage``."""
        recs = [r for r in self.records if r.stage == stage]
        return recs[-1] if recs else None

    def save(self, path: str | Path) -> None:
        """Write the history as CSV (columns as in ``to_dataframe``); a reader never sees a
        half-written file (written beside it, then renamed over it)."""
        rows = self.rows()
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        _replace(Path(path), text.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "LossHistory":
        """Read a history written by ``save``."""
        hist = cls()
        fixed = {"stage", "iteration", "wall_time", "total"}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                terms = {k: float(v) for k, v in row.items() if k not in fixed and v != ""}
                rec = IterRecord(
                    row["stage"],
                    int(row["iteration"]),
                    float(row["total"]),
                    {},
                    float(row["wall_time"]),
                )
                for k, v in terms.items():
                    (rec.info if k in _INFO_KEYS else rec.terms)[k] = v
                hist.records.append(rec)
        return hist

    def plot(self, terms: list[str] | None = None, logy: bool = True, ax=None):
        """Plot each term (and the total) against the global iteration index.

        Stage boundaries are drawn as vertical lines labelled with the stage name.

        Returns:
            The matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4.5))
        df = self.to_dataframe()
        if df.empty:
            return ax
        names = terms or ["total"] + sorted(
            {k for r in self.records for k in r.terms if k != "total"}
        )
        x = range(len(df))
        for name in names:
            if name in df:
                ax.plot(x, df[name], label=name, lw=1.5 if name == "total" else 1.0)
        starts = df.index[df["stage"] != df["stage"].shift()].tolist()
        for start in starts:
            ax.axvline(start, color="0.6", ls="--", lw=0.8)
            ax.text(
                start,
                1.0,
                f" {df['stage'][start]}",
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=8,
            )
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("iteration (all stages)")
        ax.set_ylabel("weighted loss")
        ax.legend(fontsize=8)
        return ax


#: Solver extras stored beside the terms in a saved history.
_INFO_KEYS = {"damping", "rejected", "evaluations", "lr"}


def _replace(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, then rename it over ``path``: a reader never sees a
    half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, newline="")
    os.replace(tmp, path)


class FollowJob:
    """The ``on_record`` callback of a job writing into ``folder``: after every iteration it
    rewrites ``history.csv`` (``LossHistory.save``) and ``progress.json``, so that a running job
    can be watched (``read_progress``; the loss-curve notebook's last cell):

    ``state`` (``running``, then ``done`` or ``failed``), ``stage``, ``stage_index`` (from 1),
    ``stages`` (names in order), ``iteration`` and ``max_iterations`` of the stage, ``loss`` (the
    weighted total), ``stage_seconds`` and ``seconds`` (the whole job so far),
    ``stage_eta_seconds`` (at most this much more for the stage: the iterations left to its limit
    at its mean time per iteration; stages usually converge earlier), ``updated`` (Unix time) and
    ``pid``.

    Args:
        folder: the job's output folder.
        stages: ``(name, iteration limit)`` of every stage, in order.
    """

    def __init__(self, folder: str | Path, stages: list[tuple[str, int]]):
        self.folder = Path(folder)
        self.limits = dict(stages)
        self.names = [name for name, _ in stages]
        self.start = time.time()
        self.last: dict = {}

    def __call__(self, history: LossHistory, record: IterRecord) -> None:
        history.save(self.folder / "history.csv")
        limit = self.limits.get(record.stage, record.iteration)
        per_iteration = record.wall_time / max(record.iteration, 1)
        self.last = {
            "stage": record.stage,
            "stage_index": self.names.index(record.stage) + 1 if record.stage in self.names else 0,
            "stages": self.names,
            "iteration": record.iteration,
            "max_iterations": limit,
            "loss": record.total,
            "stage_seconds": round(record.wall_time, 3),
            "stage_eta_seconds": round(max(limit - record.iteration, 0) * per_iteration, 1),
        }
        self._write("running")

    def finish(self, state: str = "done") -> None:
        """Mark the job ``done`` (or ``failed``) in ``progress.json``; a job that failed before
        its first iteration leaves no file (bad input leaves the output folder empty)."""
        if state == "failed" and not self.last:
            return
        self.last["stage_eta_seconds"] = 0.0
        self._write(state)

    def _write(self, state: str) -> None:
        progress = {"state": state, **self.last, "seconds": round(time.time() - self.start, 3),
                    "updated": time.time(), "pid": os.getpid()}  # fmt: skip
        _replace(self.folder / "progress.json", json.dumps(progress, indent=1) + "\n")


def read_progress(folder: str | Path) -> dict | None:
    """``progress.json`` of a job's folder (``FollowJob``), or None before its first iteration."""
    path = Path(folder) / "progress.json"
    return json.loads(path.read_text()) if path.is_file() else None

