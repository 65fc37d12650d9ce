"""Prompt formats: how a task becomes the token ids a model reads.

`render(format_name, task, tokenizer, family, max_prompt_tokens)` returns a RenderedPrompt: the ids, their
decoded text (for the record only; nothing re-tokenizes it) and the sha256 of the ids. Prompts are built
as ids: special tokens by id, text with `add_special_tokens=False` (text that looks like a special token
stays text), BOS only where the family or the chat template puts one. Adding a format = one function
`(task, tokenizer, family, max_prompt_tokens, role) -> (ids, prefix tokens dropped, suffix tokens dropped)`
plus one entry below naming the task modes it serves (params validation refuses a run that pairs it with a
benchmark of another mode).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuningtax.errors import UserError
from tuningtax.models.families import Family, get_family
from tuningtax.prompts import chat, completion, fim
from tuningtax.tasks.schema import Task

Builder = Callable[[Task, Any, Family, int, "str | None"], tuple[list[int], int, int]]


@dataclass(frozen=True)
class PromptFormat:
    name: str
    build: Builder
    summary: str
    modes: tuple[str, ...]  # task modes it can render
    needs_chat: bool = False  # only for models with a chat template: base models are not run with it


@dataclass(frozen=True)
class RenderedPrompt:
    input_ids: list[int]
    text: str  # tokenizer.decode(input_ids) with special tokens kept: for people, never re-encoded
    sha256: str  # ids_sha256(input_ids)
    format: str = ""
    truncated_prefix_tokens: int = 0  # tokens dropped from the start of the prefix (or instruction)
    truncated_suffix_tokens: int = 0  # tokens dropped from the end of the suffix


_CODE = ("flow", "completion")  # formats built from the task's code (prefix, suffix), not an instruction

FORMATS: dict[str, PromptFormat] = {f.name: f for f in (
    PromptFormat("fim-psm", fim.build("psm"), "the family's FIM sentinels, prefix-suffix-middle", _CODE),
    PromptFormat("fim-spm", fim.build("spm"), "the family's FIM sentinels, suffix-prefix-middle", _CODE),
    PromptFormat("fim-chat", chat.fim_chat, "FIM sentinels inside a chat turn asking for the middle only", _CODE,
                 needs_chat=True),
    PromptFormat("holefiller", chat.holefiller, "natural-language hole-filling request (models without FIM)", _CODE),
    PromptFormat("completion-raw", completion.completion_raw, "the prefix as is, left-to-right completion", _CODE),
    PromptFormat("command-chat", chat.command_chat, "the task's instruction via the chat template", ("command",)),
)}


def get_format(name: str) -> PromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"unknown prompt format {name!r}; known: {', '.join(FORMATS)}") from None


def ids_sha256(ids: list[int]) -> str:
    """sha256 of the ids written as decimal numbers joined by commas (e.g. "151659,1499,25")."""
    return hashlib.sha256(",".join(str(int(i)) for i in ids).encode("ascii")).hexdigest()


def render(format_name: str, task: Task, tokenizer: Any, family: Family | str, max_prompt_tokens: int,
           role: str | None = None) -> RenderedPrompt:
    """`role` (base | instruct | checkpoint) picks chat template vs plain prompt where a format has both;
    None decides by whether the tokenizer has a chat template."""
    fmt = get_format(format_name)
    fam = get_family(family) if isinstance(family, str) else family
    if not isinstance(max_prompt_tokens, int) or max_prompt_tokens < 1:
        raise UserError(f"max_prompt_tokens must be a positive integer, got {max_prompt_tokens!r}")
    ids, cut_prefix, cut_suffix = fmt.build(task, tokenizer, fam, max_prompt_tokens, role)
    ids = [int(i) for i in ids]
    text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return RenderedPrompt(ids, text, ids_sha256(ids), fmt.name, cut_prefix, cut_suffix)
