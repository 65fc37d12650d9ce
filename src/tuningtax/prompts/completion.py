"""Format `completion-raw`: the task's prompt (the prefix) as is, for left-to-right completion.

BOS where the family's reference usage has one; no chat template even for instruct models (the study's
raw protocol); a long prefix loses tokens from its start.
"""

from __future__ import annotations

from typing import Any

from tuningtax.errors import UserError
from tuningtax.models.families import Family, bos_ids, encode_text
from tuningtax.prompts._build import split_budget
from tuningtax.tasks.schema import Task, shown_prefix


def completion_raw(task: Task, tokenizer: Any, family: Family, max_prompt_tokens: int,
                   role: str | None) -> tuple[list[int], int, int]:
    if not task.prompt:
        raise UserError(f"task {task.task_id} has an empty prompt; completion-raw needs code to continue")
    bos = bos_ids(family, tokenizer)
    text = encode_text(tokenizer, shown_prefix(task))
    keep, _ = split_budget(len(text), 0, max_prompt_tokens - len(bos))
    return bos + text[len(text) - keep:], len(text) - keep, 0
