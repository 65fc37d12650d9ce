"""Prompt formats rendered with the real Qwen2.5-Coder tokenizer: exact ids, truncation sides, chat
template use, BOS and special-token hygiene."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from tuningtax.errors import UserError
from tuningtax.models.families import FAMILIES, fim_ids
from tuningtax.prompts import FORMATS, ids_sha256, render
from tuningtax.prompts.chat import FIM_CHAT_INSTRUCTION
from tuningtax.tasks.schema import MODES, Task

FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, ENDOFTEXT = 151659, 151660, 151661, 151643
PREFIX = "def f(x):\n    y = x + 1\n"
SUFFIX = "    return y\n"
PREFIX_IDS = [750, 282, 2075, 982, 262, 379, 284, 856, 488, 220, 16, 198]
SUFFIX_IDS = [262, 470, 379, 198]
# "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
# "<|im_start|>user\n"
CHAT_HEAD = [151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 1446, 525, 264, 10950,
             17847, 13, 151645, 198, 151644, 872, 198]
CHAT_TAIL = [151645, 198, 151644, 77091, 198]  # "<|im_end|>\n<|im_start|>assistant\n"


def task(prefix: str = PREFIX, suffix: str = SUFFIX, instruction: str = "Write f.", mode: str = "flow") -> Task:
    return Task("t/0", "crafted", mode, prefix, suffix, "    y *= 2\n", "", "f", instruction, "crafted/0")


@pytest.fixture(scope="module")
def tok(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_dir)


@pytest.fixture(scope="module")
def tok_plain(tok):
    """The same tokenizer without a chat template (as a base model's may be)."""
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    return plain


def enc(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def chat_reference(tok, content: str) -> list[int]:
    """The template applied by transformers itself (fine here: the content holds no look-alike text)."""
    return list(tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True))


# ------------------------------------------------------------------------------------------ exact ids

def test_unknown_format_lists_the_registry(tok):
    with pytest.raises(UserError) as err:
        render("fim", task(), tok, "qwen2.5-coder", 100)
    assert f"known: {', '.join(FORMATS)}" in str(err.value)


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_renders_each_mode_it_serves(tok, name):
    fmt = FORMATS[name]
    assert fmt.name == name and fmt.summary and fmt.modes and set(fmt.modes) <= set(MODES)
    family = FAMILIES["qwen2.5-coder"]
    for mode in fmt.modes:
        if name == "fim-spm" and family.spm is None:
            with pytest.raises(UserError, match="no documented SPM layout"):
                render(name, task(mode=mode), tok, family, 100)
            continue
        for role in ("base", "instruct"):
            t = task(mode=mode, suffix="" if mode != "flow" else SUFFIX)
            if fmt.needs_chat and role == "base":
                with pytest.raises(UserError, match="chat template"):
                    render(name, t, tok, family, 100, role)
                continue
            r = render(name, t, tok, family, 100, role)
            assert r.input_ids and r.format == name and r.sha256 == ids_sha256(r.input_ids)
            assert len(r.input_ids) <= 100


def test_fim_psm_exact_ids_no_bos(tok):
    r = render("fim-psm", task(), tok, "qwen2.5-coder", 100)
    assert r.input_ids == [FIM_PREFIX, *PREFIX_IDS, FIM_SUFFIX, *SUFFIX_IDS, FIM_MIDDLE]
    assert r.input_ids == fim_ids("qwen2.5-coder", tok, PREFIX, SUFFIX)  # the families module agrees
    assert r.text == "<|fim_prefix|>" + PREFIX + "<|fim_suffix|>" + SUFFIX + "<|fim_middle|>"
    assert r.sha256 == ids_sha256(r.input_ids)
    assert r.sha256 == "1a509ed88617597d16d066c14d963a87dc2432b0cc86195040a15c10efb1c82d"
    assert (r.truncated_prefix_tokens, r.truncated_suffix_tokens) == (0, 0)


def test_fim_bos_only_where_the_family_uses_one(tok):
    with_bos = dataclasses.replace(FAMILIES["qwen2.5-coder"], name="qwen-with-bos", bos=True)
    ids = render("fim-psm", task(), tok, with_bos, 100).input_ids
    assert ids[:2] == [tok.bos_token_id, FIM_PREFIX] and ids.count(tok.bos_token_id) == 1


def test_fim_unavailable_layouts_are_clear_errors(tok):
    with pytest.raises(UserError, match="no documented SPM layout"):
        render("fim-spm", task(), tok, "qwen2.5-coder", 100)
    with pytest.raises(UserError, match="no FIM training"):
        render("fim-psm", task(), tok, "generic", 100)
    with pytest.raises(UserError, match="has no '<｜fim▁begin｜>' token"):
        render("fim-psm", task(), tok, "deepseek-coder", 100)


def test_special_token_lookalikes_in_code_stay_text(tok):
    t = task(prefix="s = '<|endoftext|><|fim_middle|>'\n")
    for name in ("fim-psm", "fim-chat", "holefiller", "completion-raw"):
        ids = render(name, t, tok, "qwen2.5-coder", 500).input_ids
        assert ENDOFTEXT not in ids, name
        assert ids.count(FIM_MIDDLE) == (1 if name.startswith("fim") else 0), name


def test_completion_raw_exact_ids(tok):
    r = render("completion-raw", task(), tok, "qwen2.5-coder", 100)
    assert r.input_ids == PREFIX_IDS and r.text == PREFIX


def test_fim_chat_exact_ids(tok):
    r = render("fim-chat", task(), tok, "qwen2.5-coder", 500)
    assert r.input_ids == (CHAT_HEAD + enc(tok, FIM_CHAT_INSTRUCTION) + [FIM_PREFIX, *PREFIX_IDS, FIM_SUFFIX,
                                                                        *SUFFIX_IDS, FIM_MIDDLE] + CHAT_TAIL)
    content = FIM_CHAT_INSTRUCTION + "<|fim_prefix|>" + PREFIX + "<|fim_suffix|>" + SUFFIX + "<|fim_middle|>"
    assert r.input_ids == chat_reference(tok, content)
    assert r.sha256 == "04c375f444201d883037b278adbe44c265c0b4f1c4bb2bca8e11ae36af7a0647"


def test_holefiller_chat_and_plain(tok, tok_plain):
    chat = render("holefiller", task(), tok, "qwen2.5-coder", 500)
    assert chat.input_ids[:len(CHAT_HEAD)] == CHAT_HEAD and chat.input_ids[-len(CHAT_TAIL):] == CHAT_TAIL
    assert "```python\n" + PREFIX + "<HOLE>" + SUFFIX + "```\n" in chat.text
    assert chat.sha256 == "60d37a42982386efef99badf5da8892026b7aa296c89ecb1520806328667844d"
    plain = render("holefiller", task(), tok_plain, "qwen2.5-coder", 500)
    assert plain.text.startswith("The Python code below has a hole marked <HOLE>.")
    assert plain.text.endswith("```\n\nThe code that replaces <HOLE>:\n")
    assert plain.input_ids == enc(tok, plain.text)  # no BOS, no chat markup
    # the role decides where both are possible: base models get the plain prompt even with a template
    assert render("holefiller", task(), tok, "qwen2.5-coder", 500, role="base").input_ids == plain.input_ids


def test_command_chat_uses_the_tokenizer_template(tok):
    r = render("command-chat", task(mode="command"), tok, "qwen2.5-coder", 100)
    assert r.input_ids == CHAT_HEAD + [7985, 282, 13] + CHAT_TAIL  # "Write f."
    assert r.input_ids == chat_reference(tok, "Write f.")


def test_command_chat_plain_prompts_for_base_models(tok, tok_plain):
    t = task(mode="command")
    assert render("command-chat", t, tok, "qwen2.5-coder", 100, role="base").input_ids == PREFIX_IDS
    assert render("command-chat", t, tok_plain, "qwen2.5-coder", 100).input_ids == PREFIX_IDS
    no_code = task(prefix="", suffix="", instruction="Write a function f.", mode="command")
    assert render("command-chat", no_code, tok_plain, "qwen2.5-coder", 100).text == '"""\nWrite a function f.\n"""\n'
    with pytest.raises(UserError, match="needs a tokenizer with a chat_template"):
        render("command-chat", t, tok_plain, "qwen2.5-coder", 100, role="instruct")
    with pytest.raises(UserError, match="has no instruction"):
        render("command-chat", task(instruction=""), tok, "qwen2.5-coder", 100)


def test_fim_chat_needs_a_chat_model(tok, tok_plain):
    with pytest.raises(UserError, match="fim-chat needs an instruct model"):
        render("fim-chat", task(), tok_plain, "qwen2.5-coder", 100)
    with pytest.raises(UserError, match="fim-chat needs an instruct model"):
        render("fim-chat", task(), tok, "qwen2.5-coder", 100, role="base")


# ------------------------------------------------------------------------------------------ truncation

LONG_PREFIX = "".join(f"x{i} = {i}\n" for i in range(60))
LONG_SUFFIX = "".join(f"y{i} = {i}\n" for i in range(60))


def test_fim_psm_truncates_prefix_left_and_suffix_right_in_tokens(tok):
    p, s = enc(tok, LONG_PREFIX), enc(tok, LONG_SUFFIX)
    r = render("fim-psm", task(LONG_PREFIX, LONG_SUFFIX), tok, "qwen2.5-coder", 41)  # 3 sentinels + 19 + 19
    assert len(r.input_ids) == 41
    assert r.input_ids == [FIM_PREFIX, *p[-19:], FIM_SUFFIX, *s[:19], FIM_MIDDLE]
    assert (r.truncated_prefix_tokens, r.truncated_suffix_tokens) == (len(p) - 19, len(s) - 19)
    # a short suffix leaves its unused half to the prefix
    r = render("fim-psm", task(LONG_PREFIX, SUFFIX), tok, "qwen2.5-coder", 41)
    assert r.input_ids == [FIM_PREFIX, *p[-(38 - len(SUFFIX_IDS)):], FIM_SUFFIX, *SUFFIX_IDS, FIM_MIDDLE]
    with pytest.raises(UserError, match="max_prompt_tokens is too small"):
        render("fim-psm", task(), tok, "qwen2.5-coder", 2)


@pytest.mark.parametrize("name", ["fim-chat", "holefiller"])
def test_chat_formats_truncate_to_fit(tok, name):
    full = render(name, task(LONG_PREFIX, LONG_SUFFIX), tok, "qwen2.5-coder", 5000)
    limit = len(full.input_ids) - 300
    r = render(name, task(LONG_PREFIX, LONG_SUFFIX), tok, "qwen2.5-coder", limit)
    assert limit - 3 <= len(r.input_ids) <= limit
    assert r.truncated_prefix_tokens > 0 and r.truncated_suffix_tokens > 0
    # the text next to the hole survives; the far ends go
    hole = "<|fim_suffix|>" if name == "fim-chat" else "<HOLE>"
    assert "x59 = 59\n" + hole + "y0 = 0\n" in r.text
    assert "\nx0 = 0\n" not in r.text and "y59 = 59" not in r.text
    assert r.input_ids[:len(CHAT_HEAD)] == CHAT_HEAD and r.input_ids[-len(CHAT_TAIL):] == CHAT_TAIL


def test_plain_prompts_truncate_from_the_left(tok):
    p = enc(tok, LONG_PREFIX)
    r = render("completion-raw", task(LONG_PREFIX, ""), tok, "qwen2.5-coder", 50)
    assert r.input_ids == p[-50:] and r.truncated_prefix_tokens == len(p) - 50
    r = render("command-chat", task(instruction="Please " * 200 + "write f."), tok, "qwen2.5-coder", 60)
    assert len(r.input_ids) <= 60 and r.text.endswith("write f.<|im_end|>\n<|im_start|>assistant\n")
