"""HumanEval random-span infilling (1640 tasks). The spans were drawn at random upstream, so the file
cannot be derived; it is read from a local mirror folder or downloaded from its pinned upstream commit,
and accepted only when its sha256 matches."""

from __future__ import annotations

from tuningtax.jsonl import read_jsonl
from tuningtax.tasks.schema import Task
from tuningtax.tasks.upstream import PinnedFile, locate

COMMIT = "88062ff9859c875d04db115b698ed4b0f0395170"
FILE = "HumanEval-RandomSpanInfilling.jsonl.gz"
PINNED = PinnedFile("humaneval-random-span", "humaneval-infilling", FILE,
                    f"https://raw.githubusercontent.com/openai/human-eval-infilling/{COMMIT}/data/{FILE}",
                    "b4f330d8a8ff97bf85d9def497dffcae4d741e506449386a877236e422e33e8d")


def random_span_tasks(mirror: str | None = None) -> list[Task]:
    return [
        Task(task_id=r["task_id"], benchmark="humaneval-random-span", mode="flow", prompt=r["prompt"],
             suffix=r["suffix"], canonical_solution=r["canonical_solution"], test=r["test"],
             entry_point=r["entry_point"], instruction="",
             source_id="/".join(r["task_id"].split("/")[1:3]))
        for r in read_jsonl(locate(PINNED, mirror))
    ]
