"""Formats that speak natural language: `fim-chat`, `holefiller`, `command-chat`.

All three go through the tokenizer's own chat template when the model gets one (`_build.use_chat`);
the template's markup becomes special tokens, the message is text, no BOS is added beyond the template's.

- fim-chat (instruct models with FIM training): one user turn holding FIM_CHAT_INSTRUCTION followed by the
  family's PSM layout (its sentinels as special tokens inside the turn).
- holefiller (models without FIM): HOLEFILLER_INSTRUCTION with the code in a fence and HOLE where the
  middle goes. Plain prompt (no chat): the same text, BOS where the family uses one, then PLAIN_ANSWER_CUE
  (not a fence: a fence in the prompt would make the answer's closing fence look like an opening one).
- command-chat: the task's `instruction` as the user turn. Plain prompt (base models): the task's code
  prompt as is, for the model to continue (the HumanEval base-model protocol; stop-cut and code-extract
  turn such a continuation back into the whole function), or, for tasks with no code prompt, the
  instruction as a module docstring.
"""

from __future__ import annotations

from typing import Any

from tuningtax.errors import UserError
from tuningtax.models.families import PREFIX, SUFFIX, Family, bos_ids, encode_text, token_id
from tuningtax.prompts._build import Segment, chat_ids, fit_text, split_budget, use_chat
from tuningtax.tasks.schema import Task, shown_prefix

FIM_CHAT_INSTRUCTION = (
    "Complete the code at the hole between the prefix and the suffix below. Reply with only the missing "
    "middle, exactly as it appears in the file (keep its indentation): do not repeat the prefix or the "
    "suffix, and add no explanation.\n"
)
HOLE = "<HOLE>"
HOLEFILLER_INSTRUCTION = (
    "The Python code below has a hole marked " + HOLE + ". Write the code that replaces " + HOLE + ". Reply "
    "with only that code, with its exact indentation: do not repeat the code before or after the hole, and "
    "add no explanation.\n\n```python\n{code}```\n"
)
PLAIN_ANSWER_CUE = "\nThe code that replaces " + HOLE + ":\n"


def fim_chat(task: Task, tokenizer: Any, family: Family, max_prompt_tokens: int,
             role: str | None) -> tuple[list[int], int, int]:
    if not use_chat(tokenizer, role):
        raise UserError("prompt format fim-chat needs an instruct model whose tokenizer has a chat template; "
                        "use fim-psm for base models")
    layout = family.layout("psm")

    def segments(prefix: str, suffix: str) -> list[Segment]:
        out: list[Segment] = [FIM_CHAT_INSTRUCTION]
        for part in layout:
            if part == PREFIX:
                out.append(prefix)
            elif part == SUFFIX:
                out.append(suffix)
            else:
                tid = token_id(tokenizer, part)
                if tid is None:
                    raise UserError(f"the tokenizer has no {part!r} token required by family {family.name!r}")
                out.append(tid)
        return out

    return fit_text(tokenizer, shown_prefix(task), task.suffix, lambda p, s: chat_ids(tokenizer, segments(p, s)),
                    max_prompt_tokens)


def holefiller(task: Task, tokenizer: Any, family: Family, max_prompt_tokens: int,
               role: str | None) -> tuple[list[int], int, int]:
    chat = use_chat(tokenizer, role)

    def build(prefix: str, suffix: str) -> list[int]:
        code = prefix + HOLE + suffix
        text = HOLEFILLER_INSTRUCTION.format(code=code if code.endswith("\n") else code + "\n")
        if chat:
            return chat_ids(tokenizer, [text])
        return bos_ids(family, tokenizer) + encode_text(tokenizer, text + PLAIN_ANSWER_CUE)

    return fit_text(tokenizer, shown_prefix(task), task.suffix, build, max_prompt_tokens)


def plain_command_text(task: Task) -> str:
    if task.prompt.strip():
        return task.prompt
    return '"""\n' + task.instruction + ('' if task.instruction.endswith("\n") else "\n") + '"""\n'


def command_chat(task: Task, tokenizer: Any, family: Family, max_prompt_tokens: int,
                 role: str | None) -> tuple[list[int], int, int]:
    if not task.instruction.strip():
        raise UserError(f"task {task.task_id} has no instruction; command-chat is for command tasks")
    if use_chat(tokenizer, role):
        # An over-long instruction loses its start, like a prefix (the code it quotes is at its end).
        return fit_text(tokenizer, task.instruction, "", lambda p, s: chat_ids(tokenizer, [p]), max_prompt_tokens)
    bos = bos_ids(family, tokenizer)
    text = encode_text(tokenizer, plain_command_text(task))
    keep, _ = split_budget(len(text), 0, max_prompt_tokens - len(bos))
    return bos + text[len(text) - keep:], len(text) - keep, 0
