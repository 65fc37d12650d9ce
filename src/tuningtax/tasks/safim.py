"""SAFIM (Gong et al., "Evaluation of LLMs on Syntax-Aware Code Fill-in-the-Middle Tasks", ICML 2024):
block, control-flow and API-call holes in real code. The Python split is `safim-block`, `safim-control` and
`safim-api`; the Java, C++ and C# splits of the same files are `safim-<split>-<language>` (opt-in: scored
where the language's toolchain is installed, tuningtax.scoring.toolchains).

Read from the pinned upstream commit of github.com/gonglinyuan/safim (or the local mirror), by sha256.
Each record's `prompt` is a natural-language header (problem statement) followed by the code with
`# TODO: Your code here` (`/* TODO: Your code here */` in Java, C++ and C#) at the hole; `eval_prompt` is
the same code with `{{completion}}` there. A task
keeps the code around the hole as its prefix/suffix (exactly eval_prompt's two sides, so the program that
runs is SAFIM's eval_prompt with the completion in place) and the header as its `header`, which the
prompt formats show before the prefix. Line endings are kept as upstream wrote them (often CRLF); the
stdin/stdout scorer removes carriage returns before running, as SAFIM's executor (ExecEval) does.

Problems: the block and control tasks cut from one program share a `source_id` (a hash of the program),
so the subset keeps them together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from tuningtax.errors import UserError
from tuningtax.jsonl import read_jsonl
from tuningtax.tasks.schema import Task
from tuningtax.tasks.upstream import PinnedFile, locate

COMMIT = "231b148f5bf68a959a07b3454e7dfae6382a7a67"
HOLE = "{{completion}}"
# SAFIM's placeholder per language (prompt_utils.py COMPLETION_PLACEHOLDER)
TODO = {"python": "# TODO: Your code here", "java": "/* TODO: Your code here */",
        "cpp": "/* TODO: Your code here */", "csharp": "/* TODO: Your code here */"}
LANGUAGES = tuple(TODO)
SPLITS = {
    "block": "a6ee546933f3c74a1fa95f544206e9b6467434ab2044ee58e365421a9ced22d4",
    "control": "63eb4c0382e1f20bbb21efbd30997390ca0c8c9a9adee9018caccdb3224bb68a",
    "api": "21e87bc349f7e344ebd3654fe9386a26457f8a46418ccb56751f7d3dc300f911",
}


def pinned(split: str) -> PinnedFile:
    name = f"{split}_completion.jsonl.gz"
    return PinnedFile(f"safim-{split}", "safim", name,
                      f"https://raw.githubusercontent.com/gonglinyuan/safim/{COMMIT}/data/{name}", SPLITS[split])


def program_id(code: str) -> str:
    return "safim/" + hashlib.sha256(code.replace("\r", "").encode()).hexdigest()[:12]


def benchmark_name(split: str, lang: str = "python") -> str:
    return f"safim-{split}" if lang == "python" else f"safim-{split}-{lang}"


def split_of(benchmark: str) -> str:
    """block, control or api."""
    return benchmark.split("-")[1]


def _task(record: dict, split: str, where: str) -> Task:
    eval_prompt, prompt, todo = record["eval_prompt"], record["prompt"], TODO[record["lang"]]
    if eval_prompt.count(HOLE) != 1 or prompt.count(todo) != 1:
        raise UserError(f"{where}: {record['task_id']} has no single hole; the file is not SAFIM's")
    prefix, suffix = eval_prompt.split(HOLE)
    shown_prefix, shown_suffix = prompt.split(todo)
    if not shown_prefix.endswith(prefix) or shown_suffix != suffix:
        raise UserError(f"{where}: {record['task_id']}: prompt and eval_prompt disagree around the hole")
    header = shown_prefix[: len(shown_prefix) - len(prefix)]
    tests = record["unit_tests"]
    if isinstance(tests, str):  # the Hugging Face copy stores them as a JSON string
        tests = json.loads(tests)
    if (split == "api") != (not tests):
        raise UserError(f"{where}: {record['task_id']}: {'api' if split == 'api' else split} tasks "
                        f"{'have no' if split == 'api' else 'need'} unit tests")
    return Task(task_id=record["task_id"], benchmark=benchmark_name(split, record["lang"]), mode="flow",
                prompt=prefix, suffix=suffix,
                canonical_solution=record["ground_truth"],
                test=json.dumps(tests, ensure_ascii=False, sort_keys=True) if tests else "",
                entry_point="", instruction="", header=header,
                source_id=program_id(prefix + record["ground_truth"] + suffix))


def safim_tasks(split: str, mirror: str | None, lang: str = "python") -> list[Task]:
    path = locate(pinned(split), mirror)
    return [_task(r, split, str(path)) for r in read_jsonl(path) if r["lang"] == lang]


def builder(split: str, lang: str = "python") -> Callable[[str | None], list[Task]]:
    def build(mirror: str | None = None) -> list[Task]:
        return safim_tasks(split, mirror, lang)

    build.__name__ = f"{split}_tasks" if lang == "python" else f"{split}_{lang}_tasks"
    return build


block_tasks, control_tasks, api_tasks = builder("block"), builder("control"), builder("api")
