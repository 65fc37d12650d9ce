"""Which prompts decode together, and when: static batches or continuous batching, both length-aware, with
shared-prefix reuse.

``static``      prompts sorted by token length (longest first), cut into batches of ``slots`` and decoded by
                ``engine.greedy``: left padding is only the length spread inside a batch, but a batch still
                waits for its slowest row. The only scheduler that keeps the KV cache on the device (IO
                binding on CUDA).
``continuous``  ``slots`` rows decode together; a row leaves the batch at its stop token or budget and the
                next prompt (longest first) takes the slot. A newcomer is prefilled alone, with no padding,
                and its KV cache joins the running batch's, left-padded to the batch's width (the mask hides
                the padding); columns no row needs any more are dropped.
``task-order``  static batches cut from the task list as it comes (what earlier versions did; kept as the
                benchmark's baseline).
Prefix reuse    (continuous) the KV cache of the last few prefilled prompts is kept; a newcomer sharing at
                least ``MIN_SHARED_TOKENS`` leading tokens with one of them (the chat template's system and
                user preamble, or one problem's code before its holes) prefills only what follows.

Every row sees what batch-1 greedy decoding would give it: its own tokens at positions 0..n-1 and masked
padding, so tokens do not depend on the scheduler, the batch size or which prompts share a batch (the
parity tests compare them). Finished rows are yielded as ``(prompt index, tokens)`` in the order they end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tuningtax.generate.engine import _empty_past, _host_step, bind_device_of, greedy, left_pad

SCHEDULERS = ("continuous", "static", "task-order")
MIN_SHARED_TOKENS = 8  # below this a reuse saves less than the cache slicing costs
PREFIX_CACHE_ENTRIES = 4


@dataclass
class ScheduleStats:
    """Work done, in token positions: what a step computed, and how much of it was padding or reused."""

    prompt_tokens: int = 0  # the prompts' own tokens
    prefill_positions: int = 0  # positions prefilled, padding included
    reused_prefix_tokens: int = 0  # prompt tokens whose KV came from the prefix cache
    decode_row_steps: int = 0  # rows x decode steps, finished rows still decoding included
    useful_decode_row_steps: int = 0  # of those, steps whose token was recorded
    decode_steps: int = 0
    max_cache_width: int = 0
    prefill_s: float = 0.0  # continuous only: time in prefill forward passes
    decode_s: float = 0.0  # continuous only: time in decode forward passes

    @property
    def padding_share(self) -> float:
        """Share of computed positions (prefill and decode) that were padding or rows already finished."""
        computed = self.prefill_positions + self.decode_row_steps
        useful = (self.prompt_tokens - self.reused_prefix_tokens) + self.useful_decode_row_steps
        return 1.0 - useful / computed if computed else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"prompt_tokens": self.prompt_tokens, "prefill_positions": self.prefill_positions,
                "reused_prefix_tokens": self.reused_prefix_tokens, "decode_steps": self.decode_steps,
                "decode_row_steps": self.decode_row_steps, "useful_decode_row_steps": self.useful_decode_row_steps,
                "max_cache_width": self.max_cache_width, "padding_share": round(self.padding_share, 6),
                "prefill_s": round(self.prefill_s, 3), "decode_s": round(self.decode_s, 3)}


def length_order(prompts: Sequence[Sequence[int]]) -> list[int]:
    """Prompt indices, longest first; ties keep their task order."""
    return sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))


def schedule(session: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int, stop_ids: Sequence[int],
             slots: int, pad_id: int, scheduler: str = "continuous", reuse_prefix: bool = True,
             stats: ScheduleStats | None = None) -> Iterator[tuple[int, list[int]]]:
    """Greedy tokens of every prompt (a stop token, when hit, ends the list), yielded as rows finish."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler {scheduler!r}: expected one of {SCHEDULERS}")
    stats = stats if stats is not None else ScheduleStats()
    stats.prompt_tokens += sum(len(p) for p in prompts)
    order = list(range(len(prompts))) if scheduler == "task-order" else length_order(prompts)
    if scheduler != "continuous" or bind_device_of(session):
        yield from _static(session, prompts, order, max_new_tokens, stop_ids, slots, pad_id, stats)
    else:
        yield from _continuous(session, prompts, order, max_new_tokens, stop_ids, slots, reuse_prefix, stats)


def _static(session, prompts, order, max_new_tokens, stop_ids, slots, pad_id, stats) -> Iterator[tuple[int, list[int]]]:
    for lo in range(0, len(order), slots):
        rows = order[lo:lo + slots]
        ids, mask = left_pad([prompts[i] for i in rows], pad_id)
        generated = greedy(session, ids, mask, max_new_tokens, stop_ids)
        steps = max(len(t) for t in generated) - 1
        stats.prefill_positions += ids.size
        stats.decode_steps += steps
        stats.decode_row_steps += steps * len(rows)
        stats.useful_decode_row_steps += sum(len(t) - 1 for t in generated)
        stats.max_cache_width = max(stats.max_cache_width, ids.shape[1] + steps)
        yield from zip(rows, generated)


def _pad_left(array: np.ndarray, width: int, axis: int) -> np.ndarray:
    missing = width - array.shape[axis]
    if missing <= 0:
        return array
    pad = [(0, 0)] * array.ndim
    pad[axis] = (missing, 0)
    return np.pad(array, pad)


class _PrefixCache:
    """The prefill KV cache ([1, heads, n, dim] per layer) of the last few prompts, by token ids."""

    def __init__(self, entries: int):
        self.entries = entries
        self.items: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []

    def longest(self, ids: np.ndarray) -> tuple[int, dict[str, np.ndarray] | None]:
        best, best_past = 0, None
        for cached_ids, past in self.items:
            n = min(len(cached_ids), len(ids))
            differs = np.flatnonzero(cached_ids[:n] != ids[:n])
            shared = int(differs[0]) if differs.size else n
            if shared > best:
                best, best_past = shared, past
        return best, best_past

    def add(self, ids: np.ndarray, past: dict[str, np.ndarray]) -> None:
        self.items = [*self.items[-(self.entries - 1):], (ids, past)] if self.entries else []


def _continuous(session, prompts, order, max_new_tokens, stop_ids, slots, reuse_prefix,
                stats) -> Iterator[tuple[int, list[int]]]:
    names = {i.name for i in session.get_inputs()}
    out_names = [o.name for o in session.get_outputs()]
    present_to_past = {n: "past_key_values." + n[len("present."):] for n in out_names if n.startswith("present.")}
    step = _host_step(session, out_names, present_to_past)
    stops = {int(s) for s in stop_ids}
    cache = _PrefixCache(PREFIX_CACHE_ENTRIES if reuse_prefix else 0)
    waiting = list(order)
    waiting.reverse()  # pop() takes the longest
    rows: list[int] = []  # prompt index per batch row
    tokens: list[list[int]] = []
    past: dict[str, np.ndarray] = _empty_past(session, 0)
    mask = np.zeros((0, 0), dtype=np.int64)
    positions = np.zeros(0, dtype=np.int64)

    def prefill(index: int) -> tuple[int, dict[str, np.ndarray]]:
        ids = np.asarray(prompts[index], dtype=np.int64)
        shared, head = cache.longest(ids)
        shared = min(shared, len(ids) - 1)  # at least one position to read the next token's logits from
        if shared < MIN_SHARED_TOKENS:
            shared, head = 0, None
        feed = {"input_ids": ids[None, shared:], "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        if "position_ids" in names:
            feed["position_ids"] = np.arange(shared, len(ids), dtype=np.int64)[None]
        head_past = ({k: np.ascontiguousarray(v[:, :, :shared]) for k, v in head.items()} if head is not None
                     else _empty_past(session, 1))
        start = time.perf_counter()
        logits, present = step(feed, head_past)
        stats.prefill_s += time.perf_counter() - start
        stats.prefill_positions += len(ids) - shared
        stats.reused_prefix_tokens += shared
        cache.add(ids, present)
        return int(logits[0, -1].argmax()), present

    while waiting or rows:
        # Fill free slots: each newcomer is prefilled alone, then joins the batch unless already finished.
        while waiting and len(rows) < slots:
            index = waiting.pop()
            first, present = prefill(index)
            if first in stops or max_new_tokens <= 1:
                yield index, [first]
                continue
            width = max(mask.shape[1], len(prompts[index]))
            past = {k: np.concatenate([_pad_left(past[k], width, 2), _pad_left(present[k], width, 2)])
                    for k in past}
            row_mask = _pad_left(np.ones((1, len(prompts[index])), dtype=np.int64), width, 1)
            mask = np.concatenate([_pad_left(mask, width, 1), row_mask])
            positions = np.append(positions, len(prompts[index]))
            rows.append(index)
            tokens.append([first])
        if not rows:
            break
        mask = np.concatenate([mask, np.ones((len(rows), 1), dtype=np.int64)], axis=1)
        feed = {"input_ids": np.asarray([t[-1] for t in tokens], dtype=np.int64)[:, None], "attention_mask": mask}
        if "position_ids" in names:
            feed["position_ids"] = positions[:, None]
        start = time.perf_counter()
        logits, past = step(feed, past)
        stats.decode_s += time.perf_counter() - start
        positions = positions + 1
        stats.decode_steps += 1
        stats.decode_row_steps += len(rows)
        stats.useful_decode_row_steps += len(rows)
        stats.max_cache_width = max(stats.max_cache_width, mask.shape[1])
        next_ids = logits[:, -1, :].argmax(axis=-1)
        keep = []
        for r, token in enumerate(next_ids.tolist()):
            tokens[r].append(token)
            if token in stops or len(tokens[r]) >= max_new_tokens:
                yield rows[r], tokens[r]
            else:
                keep.append(r)
        if len(keep) < len(rows):
            rows = [rows[r] for r in keep]
            tokens = [tokens[r] for r in keep]
            mask, positions = mask[keep], positions[keep]
            past = {k: v[keep] for k, v in past.items()}
            needed = np.flatnonzero(mask.any(axis=0))  # drop the leading columns only finished rows used
            start = int(needed[0]) if needed.size else mask.shape[1]
            if start:
                mask = mask[:, start:]
                past = {k: np.ascontiguousarray(v[:, :, start:]) for k, v in past.items()}
