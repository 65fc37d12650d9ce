"""Formats `fim-psm` and `fim-spm`: the family's own FIM layout, as ids.

Special tokens by id, prefix and suffix encoded as text on their own (the family's reference usage),
BOS only where the family's reference prompt has one. The prefix loses tokens from its start and the
suffix from its end, exactly in tokens. A family without the layout raises a UserError naming it.
"""

from __future__ import annotations

from typing import Any

from tuningtax.errors import UserError
from tuningtax.models.families import PREFIX, SUFFIX, Family, bos_ids, encode_text, token_id
from tuningtax.prompts._build import split_budget
from tuningtax.tasks.schema import Task, shown_prefix


def fim_layout_ids(family: Family, tokenizer: Any, prefix_ids: list[int], suffix_ids: list[int],
                   mode: str) -> list[int]:
    ids = bos_ids(family, tokenizer)
    for part in family.layout(mode):
        if part == PREFIX:
            ids += prefix_ids
        elif part == SUFFIX:
            ids += suffix_ids
        else:
            tid = token_id(tokenizer, part)
            if tid is None:
                raise UserError(f"the tokenizer has no {part!r} token required by family {family.name!r}: "
                                "check the model's family field in params.yaml")
            ids.append(tid)
    return ids


def build(mode: str):
    def _build(task: Task, tokenizer: Any, family: Family, max_prompt_tokens: int,
               role: str | None) -> tuple[list[int], int, int]:
        prefix = encode_text(tokenizer, shown_prefix(task))
        suffix = encode_text(tokenizer, task.suffix, leading_space=not family.suffix_without_leading_space)
        fixed = len(fim_layout_ids(family, tokenizer, [], [], mode))
        keep_p, keep_s = split_budget(len(prefix), len(suffix), max_prompt_tokens - fixed)
        ids = fim_layout_ids(family, tokenizer, prefix[len(prefix) - keep_p:], suffix[:keep_s], mode)
        return ids, len(prefix) - keep_p, len(suffix) - keep_s
    return _build
