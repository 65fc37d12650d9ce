"""Family registry: templates as the literature prints them, token-id rendering, stop-token resolution."""

from __future__ import annotations

import pytest

from tuningtax.errors import UserError
from tuningtax.models.families import (
    FAMILIES,
    encode_text,
    fim_ids,
    get_family,
    stop_token_ids,
    wants_chat_template,
)

FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = 151659, 151660, 151661
ENDOFTEXT, IM_END = 151643, 151645


@pytest.fixture(scope="module")
def qwen_tok(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_dir)


def test_registry_has_the_required_families():
    assert {"qwen2.5-coder", "deepseek-coder", "starcoder2", "codellama", "codegemma", "generic"} <= set(FAMILIES)
    with pytest.raises(UserError, match="unknown; known families: qwen2.5-coder, deepseek-coder"):
        get_family("gpt-9")


@pytest.mark.parametrize(
    ("family", "psm"),
    [
        ("qwen2.5-coder", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"),
        ("deepseek-coder", "<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>"),
        ("starcoder2", "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"),
        ("codellama", "▁<PRE>{prefix}▁<SUF>{suffix}▁<MID>"),
        ("codegemma", "<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>"),
    ],
)
def test_psm_templates(family, psm):
    assert get_family(family).template("psm") == psm


def test_spm_only_where_documented():
    assert get_family("codellama").template("spm") == "▁<PRE>▁<SUF>{suffix}▁<MID>{prefix}"
    for name in ("qwen2.5-coder", "deepseek-coder", "starcoder2", "codegemma"):
        with pytest.raises(UserError, match="no documented SPM layout"):
            get_family(name).template("spm")
    with pytest.raises(UserError, match="no FIM training"):
        get_family("generic").template("psm")


def test_qwen_fim_ids_exact(qwen_tok):
    prefix, suffix = "def f(x):\n    return ", "\n"
    ids = fim_ids("qwen2.5-coder", qwen_tok, prefix, suffix)
    assert ids == [FIM_PREFIX, 750, 282, 2075, 982, 262, 470, 220, FIM_SUFFIX, 198, FIM_MIDDLE]
    # No BOS, although this GGUF-converted tokenizer reports <|endoftext|> as bos_token.
    assert qwen_tok.bos_token_id == ENDOFTEXT and ids[0] == FIM_PREFIX


def test_special_token_text_in_code_stays_text(qwen_tok):
    ids = fim_ids("qwen2.5-coder", qwen_tok, 'x = "<|endoftext|>"\n', "")
    assert ENDOFTEXT not in ids and ids[0] == FIM_PREFIX and ids[-2:] == [FIM_SUFFIX, FIM_MIDDLE]
    assert qwen_tok.decode(ids[1:-2]) == 'x = "<|endoftext|>"\n'


def test_other_family_tokens_missing_from_qwen_vocab(qwen_tok):
    with pytest.raises(UserError, match="no '<fim_prefix>' token required by family 'starcoder2'"):
        fim_ids("starcoder2", qwen_tok, "a", "b")
    with pytest.raises(UserError, match="starts prompts with BOS|no '<｜fim▁begin｜>' token"):
        fim_ids("deepseek-coder", qwen_tok, "a", "b")


def test_bos_families_prepend_bos(qwen_tok):
    # CodeGemma shares Qwen's FIM token strings, so the Qwen tokenizer can render its layout; it adds BOS.
    ids = fim_ids("codegemma", qwen_tok, "a", "b")
    assert ids[:2] == [qwen_tok.bos_token_id, FIM_PREFIX]


def test_encode_without_leading_space(qwen_tok):
    assert encode_text(qwen_tok, "foo", leading_space=False) == encode_text(qwen_tok, "foo")
    assert encode_text(qwen_tok, "") == []


def test_stop_token_ids(qwen_tok):
    assert stop_token_ids("qwen2.5-coder", qwen_tok) == [ENDOFTEXT, IM_END, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX,
                                                         151662, 151663, 151664]
    # Strings absent from the vocabulary are dropped; the tokenizer's EOS is always a stop.
    assert stop_token_ids("starcoder2", qwen_tok) == [ENDOFTEXT, IM_END]
    assert stop_token_ids("generic", qwen_tok) == [IM_END]


def test_chat_template_handling(qwen_tok):
    assert wants_chat_template("instruct", qwen_tok) is True
    assert wants_chat_template("base", qwen_tok) is False

    class NoTemplate:
        chat_template = None

    assert wants_chat_template("checkpoint", NoTemplate()) is False
    with pytest.raises(UserError, match="role instruct needs a tokenizer with a chat_template"):
        wants_chat_template("instruct", NoTemplate())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_sentinel_is_cut_and_counted_as_a_leak(name):
    from tuningtax.metrics import METRICS
    from tuningtax.tasks.schema import Task
    from tuningtax.text import SENTINELS, cut_at_sentinel

    family = FAMILIES[name]
    if family.has_fim:
        assert family.sentinels, f"{name} has FIM tokens, so it has sentinels"
    task = Task("t/0", "crafted", "flow", "def f():\n", "", "    return 1\n", "", "f", "", "t/0")
    for sentinel in family.sentinels:
        assert sentinel in SENTINELS and "▁" != sentinel[:1]
        text = "    return 1" + sentinel + "\nprint(2)\n"
        assert cut_at_sentinel(text) == "    return 1"
        assert METRICS["special_token_leak"]({"completion": text}, task, None) is True
    assert METRICS["special_token_leak"]({"completion": "    return 1\n"}, task, None) is False
