"""Building blocks for prompt formats: text encoding, token-exact truncation, and the tokenizer's own chat
template rendered as ids (its markup parsed as special tokens, the message content always as text)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tuningtax.errors import UserError
from tuningtax.models.families import encode_text, wants_chat_template

# A private-use string no template or benchmark contains: marks where the message content goes.
_PLACEHOLDER = "\ue000tuningtax-content\ue001"

Segment = str | int  # text (encoded as text) or one token id


def split_budget(n_prefix: int, n_suffix: int, budget: int) -> tuple[int, int]:
    """How many prefix and suffix tokens to keep. Each side may use half the budget; a side that needs
    less leaves the rest to the other (the prefix gets the odd token). Kept tokens are the ones next to
    the hole: the prefix loses its start, the suffix its end."""
    if budget < 0:
        raise UserError(f"max_prompt_tokens is too small: the prompt's fixed part alone is {-budget} tokens "
                        "over it; raise max_prompt_tokens")
    if n_prefix + n_suffix <= budget:
        return n_prefix, n_suffix
    keep_suffix = min(n_suffix, max(budget // 2, budget - n_prefix))
    return min(n_prefix, budget - keep_suffix), keep_suffix


def _offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    enc = tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    return list(enc["offset_mapping"])


def keep_last_tokens(tokenizer: Any, text: str, n: int) -> str:
    """The end of `text` made of its last `n` tokens (cut at a character boundary)."""
    offsets = _offsets(tokenizer, text)
    if n >= len(offsets):
        return text
    return text[offsets[len(offsets) - n][0]:] if n > 0 else ""


def keep_first_tokens(tokenizer: Any, text: str, n: int) -> str:
    offsets = _offsets(tokenizer, text)
    if n >= len(offsets):
        return text
    return text[: offsets[n - 1][1]] if n > 0 else ""


def fit_text(tokenizer: Any, prefix: str, suffix: str, build: Callable[[str, str], list[int]],
             max_prompt_tokens: int) -> tuple[list[int], int, int]:
    """ids = build(prefix', suffix') for the longest prefix tail / suffix head that fit max_prompt_tokens.

    Used where prefix and suffix sit inside one text (chat messages, hole-filler), so the whole message is
    tokenized as one string; merges across the cut can change the count by a token or two, so the budget
    is re-measured and tightened until it fits. Returns (ids, prefix tokens dropped, suffix tokens dropped)."""
    n_prefix = len(encode_text(tokenizer, prefix))
    n_suffix = len(encode_text(tokenizer, suffix))
    budget = max_prompt_tokens - len(build("", ""))
    for _ in range(16):
        keep_p, keep_s = split_budget(n_prefix, n_suffix, budget)
        ids = build(keep_last_tokens(tokenizer, prefix, keep_p), keep_first_tokens(tokenizer, suffix, keep_s))
        if len(ids) <= max_prompt_tokens:
            return ids, n_prefix - keep_p, n_suffix - keep_s
        budget -= len(ids) - max_prompt_tokens
    raise UserError(f"could not fit the prompt into {max_prompt_tokens} tokens; raise max_prompt_tokens")


def use_chat(tokenizer: Any, role: str | None) -> bool:
    """Chat template or plain prompt: by the model's role when known (base -> plain; instruct without a
    template is an error), else by whether the tokenizer ships a chat template."""
    if role is None:
        return bool(getattr(tokenizer, "chat_template", None))
    return wants_chat_template(role, tokenizer)


def _render(tokenizer: Any, content: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def markup_ids(tokenizer: Any, text: str) -> list[int]:
    """The template's own text: its special-token strings ARE special tokens (BOS, <|im_start|> ...)."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def chat_ids(tokenizer: Any, segments: Sequence[Segment]) -> list[int]:
    """One user turn through the tokenizer's chat template, plus the assistant generation prompt.

    The template is rendered around a placeholder and its markup tokenized with special tokens parsed;
    the content is spliced in as ids (text segments as text, so a literal "<|endoftext|>" in benchmark code
    stays text; int segments as themselves). A template that rewrites the content (e.g. trims it) is
    honoured for text-only content and refused where tokens must be placed inside it."""
    rendered = _render(tokenizer, _PLACEHOLDER)
    if rendered.count(_PLACEHOLDER) != 1:
        raise UserError("the tokenizer's chat template does not place the user message exactly once")
    head, tail = rendered.split(_PLACEHOLDER)
    joined = "".join(s if isinstance(s, str) else tokenizer.convert_ids_to_tokens(s) for s in segments)
    real = _render(tokenizer, joined)
    if real != head + joined + tail:
        inner_ok = real.startswith(head) and real.endswith(tail) and len(real) >= len(head) + len(tail)
        if not inner_ok or any(isinstance(s, int) for s in segments):
            raise UserError("the tokenizer's chat template rewrites the message content; "
                            "special tokens cannot be placed inside it (use another prompt format)")
        segments = [real[len(head):len(real) - len(tail)]]
    ids = markup_ids(tokenizer, head)
    for seg in segments:
        ids += [seg] if isinstance(seg, int) else encode_text(tokenizer, seg)
    return ids + markup_ids(tokenizer, tail)
