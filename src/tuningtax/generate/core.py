"""Batched greedy generation with resume.

Faithfulness rules: greedy argmax only; outputs are the generated token ids after the prompt (never a
decoded string sliced by the prompt's length); the stop token that ended a row is recorded, not kept in
the text; nothing is stripped. Every record carries the prompt's sha256 and the file's sidecar
`<out>.config.json` the effective generation config, so base and instruct models are known to have
decoded the same way.

Resume: every finished record is appended and fsync'ed to `<out>.partial` (sidecar
`<out>.partial.config.json`) as its row ends, in whatever order the scheduler finishes them; once every
task is done the records are put in task order and both files are renamed to `<out>` and
`<out>.config.json`, so a workflow manager that deletes a job's declared outputs before rerunning it does
not delete the work. A rerun after kill -9 keeps the complete records already on disk, drops a torn tail,
and generates only the tasks still missing; since a row's tokens do not depend on which rows share its
batch (scheduler.py), the finished file is byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuningtax.errors import UserError
from tuningtax.jsonl import dumps, write_text_atomic
from tuningtax.tasks.schema import Task


@dataclass(frozen=True)
class GenerationConfig:
    model: str
    variant: str
    family: str
    role: str
    prompt_format: str
    batch_size: int
    max_new_tokens: int
    max_prompt_tokens: int
    stop_token_ids: tuple[int, ...]
    pad_token_id: int
    decoding: str = "greedy"  # argmax over the full vocabulary; no sampling, no penalties
    do_sample: bool = False
    scheduler: str = "continuous"  # scheduler.SCHEDULERS; tokens do not depend on it
    reuse_prefix: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


def config_path(out: Path) -> Path:
    """The sidecar of `out`; an unfinished `x.jsonl.partial` has its own, so that a workflow manager
    deleting the declared outputs (`x.jsonl`, `x.jsonl.config.json`) before a rerun leaves both intact."""
    return out.with_name(out.name + ".config.json")


def _move_with_sidecar(src: Path, dst: Path) -> None:
    """Rename a generation file and its sidecar (sidecar first)."""
    os.replace(config_path(src), config_path(dst))
    os.replace(src, dst)


def _undo_torn_move(final: Path, partial: Path) -> None:
    """A kill between ``_move_with_sidecar``'s two renames leaves one name's sidecar beside the other name's
    data: put the sidecar back beside its data, so the run resumes instead of refusing a missing sidecar."""
    for data, other in ((partial, final), (final, partial)):
        if data.exists() and not other.exists() and not config_path(data).exists() and config_path(other).exists():
            os.replace(config_path(other), config_path(data))


def _check_sidecar(path: Path, config: GenerationConfig) -> None:
    sidecar = config_path(path)
    if not sidecar.exists() or sidecar.read_text() != config.to_json():
        raise UserError(f"{path} exists but was made with another generation config ({sidecar}); "
                        "delete it or choose another --out")


def _finished_records(out: Path, config: GenerationConfig, task_ids: list[str]) -> dict[str, bytes]:
    """The complete records already in `out` that belong to this exact run, by task id; truncates a torn tail."""
    if not out.exists():
        return {}
    _check_sidecar(out, config)
    data = out.read_bytes()
    complete = data.rfind(b"\n") + 1
    known = set(task_ids)
    done: dict[str, bytes] = {}
    for number, line in enumerate(data[:complete].split(b"\n")[:-1], start=1):
        try:
            task_id = json.loads(line)["task_id"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{out}:{number}: not a generation record; delete the output and rerun") from None
        if task_id not in known or task_id in done:
            raise UserError(f"{out}:{number}: task {task_id!r} is {'repeated' if task_id in done else 'not in the task file'}; "
                            "the task file changed since this output was started: delete the output")
        done[task_id] = line + b"\n"
    if complete != len(data):
        with open(out, "r+b") as fh:  # drop the torn record
            fh.truncate(complete)
    return done


@contextlib.contextmanager
def _folder_lock(final: Path):
    """An exclusive lock on the output's folder while generation runs: a second generate writing the same file
    would interleave batches. Nothing is written for it, so no lock file is left behind."""
    import fcntl

    final.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{final}: another generate is writing it right now; wait for that run or stop it") \
                from None
        yield
    finally:
        os.close(fd)


def generate_to_file(tasks: list[Task], prompts: list[Any], tokenizer: Any, session: Any,
                     config: GenerationConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """Generate for every task, appending one batch at a time to `out`; returns throughput figures."""
    with _folder_lock(Path(out)):
        return _generate_locked(tasks, prompts, tokenizer, session, config, Path(out), progress)


def _generate_locked(tasks: list[Task], prompts: list[Any], tokenizer: Any, session: Any,
                     config: GenerationConfig, final: Path, progress: bool) -> dict[str, Any]:
    from tuningtax.generate.scheduler import ScheduleStats, schedule

    out = final.with_name(final.name + ".partial")
    _undo_torn_move(final, out)
    if final.exists():  # a finished file resumes as a complete partial: nothing left to generate
        _check_sidecar(final, config)
        _move_with_sidecar(final, out)
    task_ids = [t.task_id for t in tasks]
    done = _finished_records(out, config, task_ids)
    if not done:
        write_text_atomic(config_path(out), config.to_json())
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")
    todo = [i for i, task_id in enumerate(task_ids) if task_id not in done]
    stops = set(config.stop_token_ids)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), initial=len(done), unit="task", file=sys.stderr, dynamic_ncols=True,
                   desc=f"{config.model}/{config.variant} {config.prompt_format}")
    new_tokens = 0
    stats = ScheduleStats()
    start = time.perf_counter()
    with open(out, "ab") as fh:
        finished = schedule(session, [prompts[i].input_ids for i in todo], config.max_new_tokens,
                            config.stop_token_ids, config.batch_size, config.pad_token_id,
                            scheduler=config.scheduler, reuse_prefix=config.reuse_prefix, stats=stats)
        for position, tokens in finished:
            task, prompt = tasks[todo[position]], prompts[todo[position]]
            stopped = bool(tokens) and tokens[-1] in stops
            body = tokens[:-1] if stopped else tokens
            line = (dumps({
                "task_id": task.task_id, "sample": 0,
                "raw_output": tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False),
                "n_prompt_tokens": len(prompt.input_ids), "n_new_tokens": len(tokens),
                "stop_reason": (f"stop_token:{tokenizer.convert_ids_to_tokens(tokens[-1])}" if stopped
                                else "max_new_tokens"),
                "prompt_sha256": prompt.sha256,
            }) + "\n").encode("utf-8")
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
            done[task.task_id] = line
            new_tokens += len(tokens)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(tok_s=f"{new_tokens / max(time.perf_counter() - start, 1e-9):.1f}")
    if bar is not None:
        bar.close()
    in_task_order = b"".join(done[task_id] for task_id in task_ids)
    if out.read_bytes() != in_task_order:
        write_text_atomic(out, in_task_order.decode("utf-8"))
    _move_with_sidecar(out, final)
    elapsed = time.perf_counter() - start
    return {"new_tokens": new_tokens, "seconds": elapsed, "tokens_per_s": new_tokens / max(elapsed, 1e-9),
            "schedule": stats.as_dict()}
