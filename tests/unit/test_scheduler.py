"""Schedulers: continuous batching, length order and prefix reuse give every row the tokens batch-1 greedy
decoding gives it (fake session for the mechanics; the tiny exported model for real attention)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tuningtax.generate.engine import greedy, left_pad
from tuningtax.generate.scheduler import MIN_SHARED_TOKENS, ScheduleStats, length_order, schedule

VOCAB = 50


class CountingSession:
    """Next token = (sum of the row's unmasked tokens so far) % VOCAB, so a token depends on the whole visible
    history: a row that saw padding, another row's cache or a wrong position would drift. The KV cache
    carries each position's token id (key) and position (value)."""

    def __init__(self):
        self.feeds = []

    def get_inputs(self):
        names = ["input_ids", "attention_mask", "position_ids", "past_key_values.0.key", "past_key_values.0.value"]
        return [SimpleNamespace(name=n, shape=["batch", 1, "past", 1], type="tensor(float)") for n in names]

    def get_outputs(self):
        return [SimpleNamespace(name=n) for n in ("logits", "present.0.key", "present.0.value")]

    def run(self, names, feed):
        self.feeds.append({k: v.shape for k, v in feed.items()})
        ids, mask, pos = feed["input_ids"], feed["attention_mask"], feed["position_ids"]
        past_k, past_v = feed["past_key_values.0.key"], feed["past_key_values.0.value"]
        batch, seq = ids.shape
        assert mask.shape == (batch, past_k.shape[2] + seq)
        key = np.concatenate([past_k, ids[:, None, :, None].astype(np.float32)], axis=2)
        value = np.concatenate([past_v, pos[:, None, :, None].astype(np.float32)], axis=2)
        logits = np.zeros((batch, 1, VOCAB), dtype=np.float32)
        for row in range(batch):
            visible = mask[row].astype(bool)
            # positions must run 0..n-1 over the visible tokens, as batch-1 decoding numbers them
            assert value[row, 0, visible, 0].tolist() == list(range(int(visible.sum())))
            logits[row, 0, int(key[row, 0, visible, 0].sum()) % VOCAB] = 1.0
        return [logits, key, value]


PROMPTS = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], [2, 7], [1, 8, 2, 8, 1, 8], [9] * 14, [4, 4, 4],
           [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7], [6]]


def _batch_1(prompts, max_new, stops):
    return [greedy(CountingSession(), *left_pad([p], 0), max_new, stops)[0] for p in prompts]


@pytest.mark.parametrize("scheduler", ["continuous", "static"])
@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_every_row_gets_its_batch_1_tokens(scheduler, slots):
    stops = [2, 42]  # some rows stop early, at different steps, so slots free up mid-batch
    reference = _batch_1(PROMPTS, 9, stops)
    assert len({len(t) for t in reference}) > 2  # control: rows end at different steps
    out = dict(schedule(CountingSession(), PROMPTS, 9, stops, slots, pad_id=0, scheduler=scheduler))
    assert [out[i] for i in range(len(PROMPTS))] == reference


def test_continuous_refills_slots_and_drops_unused_cache_columns():
    session, stats = CountingSession(), ScheduleStats()
    finished = [i for i, _ in schedule(session, PROMPTS, 9, [2, 42], 2, pad_id=0, stats=stats)]
    assert sorted(finished) == list(range(len(PROMPTS)))
    decode_batches = [shape["input_ids"][0] for shape in session.feeds if shape["input_ids"][1] == 1]
    assert max(decode_batches) == 2
    assert stats.useful_decode_row_steps == stats.decode_row_steps  # no finished row keeps decoding
    assert stats.max_cache_width <= max(len(p) for p in PROMPTS) + 9


def test_length_order_is_longest_first_and_stable():
    assert length_order([[1], [1, 2], [3], [1, 2, 3]]) == [3, 1, 0, 2]


def test_prefix_reuse_prefills_only_the_new_part():
    head = list(range(1, 21))
    prompts = [head + [30, 31, 32, 33], head + [40, 41], head + [42, 43, 44]]
    reused, plain = ScheduleStats(), ScheduleStats()
    with_reuse = dict(schedule(CountingSession(), prompts, 6, [], 2, pad_id=0, stats=reused))
    without = dict(schedule(CountingSession(), prompts, 6, [], 2, pad_id=0, reuse_prefix=False, stats=plain))
    assert with_reuse == without == dict(enumerate(_batch_1(prompts, 6, [])))
    assert reused.reused_prefix_tokens == 2 * len(head) and plain.reused_prefix_tokens == 0
    assert reused.prefill_positions == plain.prefill_positions - 2 * len(head)


def test_a_short_common_head_is_not_reused():
    prompts = [list(range(1, MIN_SHARED_TOKENS)) + [40], list(range(1, MIN_SHARED_TOKENS)) + [41]]
    stats = ScheduleStats()
    list(schedule(CountingSession(), prompts, 3, [], 2, pad_id=0, stats=stats))
    assert stats.reused_prefix_tokens == 0


def test_static_padding_share_counts_pad_and_idle_rows():
    stats = ScheduleStats()
    list(schedule(CountingSession(), [[1, 2, 3, 4], [5]], 4, [], 2, pad_id=0, scheduler="static", stats=stats))
    # prefill 2 x 4 positions for 5 prompt tokens; decode 3 steps x 2 rows, all recorded
    assert stats.prefill_positions == 8 and stats.decode_row_steps == 6
    assert stats.padding_share == pytest.approx(1 - (5 + 6) / (8 + 6))


def test_real_graph_continuous_and_prefix_reuse_match_batch_1(tiny_qwen_onnx):
    """The tiny export: rows of one shared head and different tails, stop ids that end rows mid-batch."""
    from tuningtax.generate.engine import load_session

    session = load_session(tiny_qwen_onnx, threads=1)
    rng = np.random.default_rng(0)
    head = rng.integers(100, 5000, size=40).tolist()
    prompts = [head + rng.integers(100, 5000, size=int(n)).tolist() for n in rng.integers(1, 30, size=9)]
    prompts += [rng.integers(100, 5000, size=int(n)).tolist() for n in (5, 60, 17)]
    free = [greedy(session, *left_pad([p], 0), 16, [])[0] for p in prompts]
    stops = sorted({free[0][4], free[3][7], free[8][2]})  # tokens that end some rows early
    reference = [greedy(session, *left_pad([p], 0), 16, stops)[0] for p in prompts]
    assert len({len(t) for t in reference}) > 1
    for slots, reuse in ((4, True), (4, False), (12, True)):
        stats = ScheduleStats()
        out = dict(schedule(session, prompts, 16, stops, slots, pad_id=0, reuse_prefix=reuse, stats=stats))
        assert [out[i] for i in range(len(prompts))] == reference, (slots, reuse)
        assert (stats.reused_prefix_tokens > 0) == reuse
