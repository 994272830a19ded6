"""Batch runs: many independent jobs (the videos of ``run``, the sequences of ``bench run``) in
this process, on a local process pool or as Ray tasks, with every result returned to the driver.

A ``Job`` carries its inputs as bytes and a module-level function. A worker writes the inputs
into a private temporary folder, calls ``fn(inputs, out, **kwargs)`` and sends back the function's
record and every file it wrote into ``out``; the driver writes those files under
``root/<job name>/`` (each atomically, ``job.json`` last). So workers need no file system shared
with the driver, and ``job.json`` marks a finished job: a rerun skips it (``done``).

Failures: a job whose function raises an error a user can fix (``SlahmrOptError``: bad input)
fails at once; any other exception is retried up to ``retries`` times, in this process, in the
pool and on Ray alike. Ray also retries a task whose worker died (killed for memory, a lost
node) and schedules tasks by the CPUs and memory each one asks for (``BatchSettings``). Nothing
of a failed job is written but a line in the summary.
"""

import importlib.util
import json
import logging
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from slahmr_opt.errors import ConfigError, SlahmrOptError
from slahmr_opt.files.checks import write_atomic

logger = logging.getLogger(__name__)

#: The file that marks a finished job in its output folder (written last).
DONE = "job.json"


@dataclass(frozen=True)
class Job:
    """One unit of a batch.

    Attributes:
        name: the job's output folder under the batch root (a plain name).
        fn: a module-level function ``fn(inputs: Path, out: Path, **kwargs) -> dict`` (a
            JSON-able record); ``inputs`` holds the files of ``inputs``.
        inputs: file name -> bytes.
        kwargs: further arguments of ``fn`` (picklable).
        key: what the result depends on beyond the name (a config hash): a finished job with
            another key runs again.
    """

    name: str
    fn: Callable
    inputs: dict[str, bytes]
    kwargs: dict = field(default_factory=dict)
    key: str = ""


@dataclass(frozen=True)
class BatchSettings:
    """Where and how jobs run.

    Attributes:
        workers: local processes (1: in this process); with ``ray="local"``, the CPUs of the
            Ray instance started here.
        ray: None (no Ray), ``"local"`` (start a Ray instance here) or a cluster address
            (``auto``, ``ray://head:10001``).
        cpus: CPUs each Ray task asks for (its torch threads).
        memory_gb: memory each Ray task asks for (Ray starts no more tasks on a node than fit).
        retries: extra attempts after a failure that is not the input's fault.
    """

    workers: int = 1
    ray: str | None = None
    cpus: float = 1.0
    memory_gb: float = 4.0
    retries: int = 1

    def __post_init__(self):
        if self.workers < 1 or self.cpus <= 0 or self.memory_gb <= 0 or self.retries < 0:
            raise ConfigError(f"batch settings: workers >= 1, cpus > 0, memory > 0 GB and "
                              f"retries >= 0 expected, got {self}")  # fmt: skip
        if self.ray is not None and importlib.util.find_spec("ray") is None:
            raise ConfigError("--ray needs Ray: pip install 'slahmr-opt[ray]'")


@dataclass
class Outcome:
    """What became of one job: ``status`` ``done`` (now), ``skipped`` (done before), or
    ``failed`` (``error``: one line); ``record`` is the function's; ``attempts`` made (on Ray 1
    for a success, which does not tell how many it took, and ``retries + 1`` for a failure)."""

    name: str
    status: str
    record: dict = field(default_factory=dict)
    error: str = ""
    attempts: int = 0
    seconds: float = 0.0


def execute(job: Job) -> tuple[dict, dict[str, bytes]]:
    """Run ``job`` in a private temporary folder (in a worker); returns its record and the files
    it wrote (relative path -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="slahmr-opt-job-") as tmp:
        inputs, out = Path(tmp) / "in" / job.name, Path(tmp) / "out" / job.name
        inputs.mkdir(parents=True)
        out.mkdir(parents=True)
        for name, data in job.inputs.items():
            (inputs / name).parent.mkdir(parents=True, exist_ok=True)
            (inputs / name).write_bytes(data)
        record = job.fn(inputs, out, **job.kwargs)
        written = [p for p in sorted(out.rglob("*")) if p.is_file() and not p.name.startswith(".")]
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in written}
    return record, files


def _limit_threads(threads: int) -> None:
    """Pool worker initializer: ``threads`` torch threads (the pool's share of the cores)."""
    import torch

    torch.set_num_threads(threads)


def execute_task(job: Job) -> tuple[str, object]:
    """``execute`` for a Ray task: ``("done", (record, files))``, or ``("refused", message)``
    for bad input, which is returned rather than raised so that Ray does not retry it (every
    other exception is raised, and retried)."""
    try:
        return "done", execute(job)
    except SlahmrOptError as exc:
        return "refused", _one_line(exc)


def done(root: Path, job: Job) -> dict | None:
    """The record of ``job`` if it finished before under ``root`` with the same key, or None."""
    path = root / job.name / DONE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
        return marker["record"] if marker.get("key") == job.key else None
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        logger.warning("%s: unreadable; the job runs again", path)
        return None


def _store(root: Path, job: Job, record: dict, files: dict[str, bytes], attempts: int,
           seconds: float) -> None:  # fmt: skip
    """Write a finished job's files under ``root/job.name`` (``job.json`` last)."""
    folder = root / job.name
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f, data=data: f.write(data))
    marker = {"name": job.name, "key": job.key, "record": record, "attempts": attempts,
              "seconds": seconds}
    text = json.dumps(marker, indent=1, default=str).encode()
    write_atomic(folder / DONE, lambda f: f.write(text))


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}"


def run_jobs(jobs: list[Job], root: str | Path, settings: BatchSettings = BatchSettings(),
             progress: bool = True, rerun: bool = False) -> list[Outcome]:  # fmt: skip
    """Run the jobs that are not done yet under ``root`` (module docstring; ``rerun``: every
    job, replacing what finished ones wrote); returns one ``Outcome`` per job, in the order
    given."""
    root = Path(root)
    outcomes: dict[str, Outcome] = {}
    todo = []
    for job in jobs:
        record = None if rerun else done(root, job)
        if record is not None:
            outcomes[job.name] = Outcome(job.name, "skipped", record)
        else:
            todo.append(job)
    if todo:
        logger.info("%d job(s) to run, %d done before", len(todo), len(jobs) - len(todo))
    bar = tqdm(total=len(todo), desc="jobs", unit="job", disable=not progress or not todo)
    run = _run_ray if settings.ray else _run_local
    for job, result, attempts, seconds in run(todo, settings):
        if isinstance(result, BaseException | str):
            error = result if isinstance(result, str) else _one_line(result)
            outcomes[job.name] = Outcome(job.name, "failed", error=error, attempts=attempts,
                                         seconds=seconds)  # fmt: skip
            logger.warning("job %s failed after %d attempt(s): %s", job.name, attempts,
                           outcomes[job.name].error)  # fmt: skip
        else:
            record, files = result
            _store(root, job, record, files, attempts, seconds)
            outcomes[job.name] = Outcome(job.name, "done", record, attempts=attempts,
                                         seconds=seconds)  # fmt: skip
        bar.update()
    bar.close()
    return [outcomes[job.name] for job in jobs]


def _final(exc: Exception, attempts: int, settings: BatchSettings) -> bool:
    """Whether a job that raised ``exc`` on attempt ``attempts`` has failed for good."""
    return isinstance(exc, SlahmrOptError) or attempts > settings.retries


def _run_local(jobs: list[Job], settings: BatchSettings):
    """Yield ``(job, (record, files) or exception, attempts, seconds)`` as jobs finish."""
    attempts = {job.name: 0 for job in jobs}
    if settings.workers == 1:
        for job in jobs:
            while True:
                attempts[job.name] += 1
                start = time.perf_counter()
                try:
                    result = execute(job)
                except Exception as exc:  # noqa: BLE001  (reported per job)
                    if _final(exc, attempts[job.name], settings):
                        logger.debug("%s", traceback.format_exc())
                        yield job, exc, attempts[job.name], time.perf_counter() - start
                        break
                    continue
                yield job, result, attempts[job.name], time.perf_counter() - start
                break
        return
    import multiprocessing
    import os

    # spawn, not fork: forking a process that already runs torch / OpenMP threads can deadlock.
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // settings.workers)
    with ProcessPoolExecutor(max_workers=settings.workers, mp_context=context,
                             initializer=_limit_threads, initargs=(threads,)) as pool:  # fmt: skip
        started = {}

        def submit(job):
            attempts[job.name] += 1
            started[job.name] = time.perf_counter()
            return pool.submit(execute, job)

        pending = {submit(job): job for job in jobs}
        while pending:
            for future in as_completed(list(pending)):
                job = pending.pop(future)
                seconds = time.perf_counter() - started[job.name]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001
                    if _final(exc, attempts[job.name], settings):
                        yield job, exc, attempts[job.name], seconds
                    else:
                        pending[submit(job)] = job
                    break  # ``pending`` changed: wait on it anew
                yield job, result, attempts[job.name], seconds
                break


def _run_ray(jobs: list[Job], settings: BatchSettings):
    """Yield ``(job, (record, files) or exception, attempts, seconds)`` as Ray tasks finish."""
    import ray

    started_here = init_ray(settings.ray, settings.workers, settings.cpus)
    task = ray.remote(execute_task).options(
        num_cpus=settings.cpus,
        memory=int(settings.memory_gb * 2**30),
        max_retries=settings.retries,
        retry_exceptions=True,
    )
    try:
        start = time.perf_counter()
        refs = {task.remote(job): job for job in jobs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                job = refs[ref]
                seconds = time.perf_counter() - start
                try:
                    status, value = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the job's own error, after retries
                    cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                    yield job, cause, settings.retries + 1, seconds
                    continue
                except ray.exceptions.RayError as exc:  # a worker or node lost, after retries
                    yield job, exc, settings.retries + 1, seconds
                    continue
                yield job, value, 1, seconds  # "refused": the message, a failure
    finally:
        if started_here:
            ray.shutdown()


def init_ray(address: str | None, workers: int, cpus: float = 1.0) -> bool:
    """Connect to Ray (``address``) or start it here (``None`` or ``"local"``: ``workers``
    CPUs; its workers get this process's import path and ``cpus`` threads each). Returns True
    when this call started or joined it, so the caller shuts it down; False when Ray was
    already initialised in this process."""
    import os
    import sys

    import ray

    if ray.is_initialized():
        return False
    if address in (None, "local"):
        path = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
        env = {"PYTHONPATH": path, "OMP_NUM_THREADS": str(max(1, int(cpus)))}
        ray.init(num_cpus=workers, include_dashboard=False, runtime_env={"env_vars": env})
    else:
        ray.init(address=address)
    return True


def summary_rows(outcomes: list[Outcome], columns: list[str]) -> list[dict]:
    """One row per job: ``name``, ``status``, ``attempts``, ``seconds``, the record's
    ``columns``, ``error``."""
    return [{"name": o.name, "status": o.status, "attempts": o.attempts,
             "seconds": round(o.seconds, 1), **{c: o.record.get(c) for c in columns},
             "error": o.error} for o in outcomes]  # fmt: skip


def folder_inputs(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes): a job's inputs."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def write_summary(root: Path, rows: list[dict]) -> str:
    """Write ``root/batch.csv`` and return the rows as a markdown table."""
    import csv
    import io

    keys = list(rows[0]) if rows else ["name", "status"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode()
    write_atomic(root / "batch.csv", lambda f: f.write(data))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join("" if r[k] is None else str(r[k]) for k in keys) + " |"
              for r in rows]  # fmt: skip
    return "\n".join(lines)
