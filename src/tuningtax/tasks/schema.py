"""The one task schema every benchmark is converted to (the program each task runs: tuningtax.scoring.scorers)."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields

from tuningtax.errors import UserError

MODES = ("flow", "completion", "command")
# The study's generation budgets per mode: 128-256 new tokens for FIM, 512 for Command.
DEFAULT_MAX_NEW_TOKENS = {"flow": 128, "completion": 256, "command": 512}


@dataclass(frozen=True)
class Task:
    task_id: str
    benchmark: str
    mode: str  # flow | completion | command
    prompt: str  # the prefix (flow, completion); the original code prompt (command)
    suffix: str  # text after the hole ("" for completion and command)
    canonical_solution: str  # the true middle, or the whole function for command
    test: str  # defines check(candidate)
    entry_point: str
    instruction: str  # natural-language request (command); "" otherwise
    source_id: str  # the problem the task was cut from, e.g. HumanEval/0
    # Natural language a benchmark shows before the code (SAFIM's problem statement): part of the prefix
    # the model sees (flow, completion), never of the program that runs.
    header: str = ""

    def to_record(self) -> dict:
        return asdict(self)


def shown_prefix(task: Task) -> str:
    """The prefix a model is shown for a flow or completion task: the benchmark's header, then the code."""
    return task.header + task.prompt


FIELDS = tuple(f.name for f in fields(Task))
OPTIONAL = {f.name: f.default for f in fields(Task) if f.default is not MISSING}  # absent = the default


def task_from_record(record: dict, where: str = "task record") -> Task:
    record = OPTIONAL | record
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}; regenerate with `python -m tuningtax tasks`")
    wrong = [name for name in FIELDS if not isinstance(record[name], str)]
    if wrong:
        raise UserError(f"{where}: field(s) {', '.join(wrong)} must be strings")
    if record["mode"] not in MODES:
        raise UserError(f"{where}: field mode is {record['mode']!r}; expected one of {', '.join(MODES)}")
    return Task(**{name: record[name] for name in FIELDS})


def read_tasks(path) -> dict[str, Task]:
    """{task_id: Task} of a task JSONL, in file order. An empty file, a malformed record or a repeated task id
    is a UserError naming the file: an upstream step that produced nothing must stop the pipeline, not yield
    an empty table."""
    from tuningtax.jsonl import iter_numbered_jsonl

    tasks: dict[str, Task] = {}
    for lineno, record in iter_numbered_jsonl(path):
        task = task_from_record(record, where=f"{path}:{lineno}")
        if task.task_id in tasks:
            raise UserError(f"{path}:{lineno}: task_id {task.task_id!r} appears twice; regenerate the file")
        tasks[task.task_id] = task
    if not tasks:
        raise UserError(f"{path}: holds no tasks; rerun the step that wrote it (python -m tuningtax tasks / subset)")
    return tasks
