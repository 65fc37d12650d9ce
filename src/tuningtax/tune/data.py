"""Training examples for the tuning lab, and the check that no example overlaps an evaluation task.

A training problem (an MBPP+ task: its NL request and canonical solution) becomes either
- a chat example: the request rendered exactly as the Command prompt (`command-chat`, the model's chat
  template) and the solution as the assistant's turn, or
- a FIM example: one non-empty line of the solution cut out as the middle, the way the single-line infilling
  benchmark cuts HumanEval, rendered as the `fim-psm` prompt, with the middle and the family's end token as
  the response.
The loss falls on the response ids only. Whether a problem is shown as FIM is decided per problem by a
seeded hash against the arm's fim_share, so every arm trains on the same problems in the same order.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import tokenize
from dataclasses import dataclass, replace
from typing import Any, Iterable

from tuningtax.errors import UserError
from tuningtax.models.families import Family, encode_text
from tuningtax.prompts import ids_sha256, render
from tuningtax.prompts._build import markup_ids
from tuningtax.tasks.schema import Task

KINDS = ("chat", "fim")
_KEEP_NAMES = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))


@dataclass(frozen=True)
class Example:
    source_id: str
    kind: str  # chat | fim
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]

    def record(self) -> dict:
        return {"source_id": self.source_id, "kind": self.kind, "n_prompt": len(self.prompt_ids),
                "n_response": len(self.response_ids), "prompt_sha256": ids_sha256(list(self.prompt_ids)),
                "response_sha256": ids_sha256(list(self.response_ids))}


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts, the same on every machine."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def normalized_code(code: str) -> str:
    """The code with comments, layout and identifiers normalised away: names that are not keywords or
    builtins become v0, v1 ... in order of first use, so a renamed or re-indented copy compares equal.
    Code that does not tokenize falls back to its whitespace-free text."""
    names: dict[str, str] = {}
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.NAME and tok.string not in _KEEP_NAMES:
                out.append(names.setdefault(tok.string, f"v{len(names)}"))
            else:
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return "".join(code.split())
    return " ".join(out)


def program_text(task: Task) -> str:
    """The whole program a task holds: prefix + middle + suffix for infilling, the solution for Command."""
    if task.mode == "command":
        return task.canonical_solution
    return task.prompt + task.canonical_solution + task.suffix


def overlaps(train: Iterable[Task], evaluation: Iterable[Task]) -> dict[str, str]:
    """{training source_id: why it is refused} for every training problem that is an evaluation problem
    (same source_id) or holds the same code as one after normalising whitespace and names."""
    evaluation = list(evaluation)
    sources = {t.source_id: t.task_id for t in evaluation}
    codes = {normalized_code(program_text(t)): t.task_id for t in evaluation}
    refused = {}
    for task in train:
        if task.source_id in sources:
            refused[task.source_id] = f"same problem as evaluation task {sources[task.source_id]}"
        else:
            code = normalized_code(program_text(task))
            if code in codes:
                refused[task.source_id] = ("same code (names and whitespace normalised) as evaluation task "
                                           f"{codes[code]}")
    return refused


def refuse_overlaps(train: list[Task], evaluation: Iterable[Task]) -> tuple[list[Task], dict[str, str]]:
    """The training problems that overlap no evaluation task, and the refused ones with their reasons."""
    refused = overlaps(train, evaluation)
    return [t for t in train if t.source_id not in refused], refused


def fim_task(task: Task, seed: int) -> Task:
    """A single-line infilling task cut from the problem's solution: a seeded choice of its non-empty lines."""
    lines = task.canonical_solution.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if line.strip()]
    if not candidates:
        raise UserError(f"training problem {task.source_id}: its solution has no code line to cut")
    hole = candidates[int(_unit(seed, task.source_id, "line") * len(candidates))]
    return replace(task, mode="flow", prompt=task.prompt + "".join(lines[:hole]), suffix="".join(lines[hole + 1:]),
                   canonical_solution=lines[hole], instruction="", task_id=f"{task.task_id}/L{hole}")


def chat_response_ids(tokenizer: Any, content: str) -> list[int]:
    """The assistant turn as the chat template closes it (e.g. Qwen's ``<|im_end|>\\n``), content as text."""
    user = [{"role": "user", "content": "x"}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": content}], tokenize=False)
    if not full.startswith(head + content):
        raise UserError("the tokenizer's chat template rewrites the assistant's turn; it cannot be trained on "
                        "exactly (use a model whose template keeps the content as is)")
    return encode_text(tokenizer, content) + markup_ids(tokenizer, full[len(head) + len(content):])


def chat_example(task: Task, tokenizer: Any, family: Family, max_len: int) -> Example:
    prompt = render("command-chat", task, tokenizer, family, max_len, role="instruct").input_ids
    answer = "```python\n" + task.canonical_solution.strip("\n") + "\n```"
    return Example(task.source_id, "chat", tuple(prompt), tuple(chat_response_ids(tokenizer, answer)))


def fim_example(task: Task, tokenizer: Any, family: Family, max_len: int, seed: int) -> Example:
    if not family.has_fim or not family.stop_tokens:
        raise UserError(f"model family {family.name} has no FIM template; set the arm's fim_share to 0")
    cut = fim_task(task, seed)
    prompt = render("fim-psm", cut, tokenizer, family, max_len).input_ids
    end = tokenizer.convert_tokens_to_ids(family.stop_tokens[0])
    return Example(task.source_id, "fim", tuple(prompt), tuple(encode_text(tokenizer, cut.canonical_solution)) + (end,))


def build_examples(tasks: list[Task], tokenizer: Any, family: Family, *, fim_share: float, seed: int,
                   max_seq_len: int, n_examples: int) -> tuple[list[Example], dict[str, str]]:
    """One example per training problem, in a seeded order shared by every arm, and the problems left out
    for length ({source_id: reason}). A problem is kept only if both its chat and FIM forms fit, so arms with
    different FIM shares train on the same problems."""
    if fim_share > 0 and not family.has_fim:
        raise UserError(f"model family {family.name} has no FIM template, so it cannot be shown FIM examples; "
                        "set the arm's fim_share to 0")
    ranked = sorted(tasks, key=lambda t: _unit(seed, t.source_id, "rank"))
    examples, too_long = [], {}
    for task in ranked:
        chat = chat_example(task, tokenizer, family, max_seq_len)
        fim = fim_example(task, tokenizer, family, max_seq_len, seed) if family.has_fim else chat
        longest = max(len(e.prompt_ids) + len(e.response_ids) for e in (chat, fim))
        if longest > max_seq_len:
            too_long[task.source_id] = f"{longest} tokens > max_seq_len {max_seq_len}"
            continue
        examples.append(fim if _unit(seed, task.source_id, "fim") < fim_share else chat)
        if n_examples and len(examples) == n_examples:
            break
    if not examples:
        raise UserError(f"no training example fits max_seq_len {max_seq_len}; raise tuning.max_seq_len")
    return examples, too_long
