"""The tokenizer read by `tokenizers` alone (generation's, so that no generation job imports transformers) gives
AutoTokenizer's prompt ids, texts, stop tokens and chat template on every prompt format and role."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tuningtax.errors import UserError
from tuningtax.generate.engine import load_tokenizer
from tuningtax.models.families import FAMILIES, pad_token_id, stop_token_ids
from tuningtax.models.tokenizer import FastTokenizer
from tuningtax.prompts import FORMATS, render
from tuningtax.tasks.registry import build_tasks
from tuningtax.tasks.schema import Task

# text a tokenizer may get wrong: special-token look-alikes (kept as text), CRLF, tabs, non-ASCII, emoji
TRICKY = ("def f(x):\r\n\t# <|fim_prefix|> <|endoftext|> <|im_end|>\n    s = 'naïve 東京 🚀'\n",
          "    return s  # <|im_start|>assistant\n")


@pytest.fixture(scope="module")
def reference(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_dir, fix_mistral_regex=False)


@pytest.fixture(scope="module")
def fast(qwen_tokenizer_dir):
    tokenizer = load_tokenizer(qwen_tokenizer_dir)
    assert isinstance(tokenizer, FastTokenizer)  # the Qwen folder is read without transformers
    return tokenizer


def tasks() -> list[Task]:
    """The first HumanEval tasks of each mode, plus one made of tricky text."""
    found = [t for name in ("humaneval-single-line", "humaneval-completion", "humaneval-command")
             for t in build_tasks(name)[:4]]
    prefix, suffix = TRICKY
    found += [Task("tricky/0", "crafted", mode, prefix, suffix, "    s += '✓'\n", "", "f",
                   "Write f. <|fim_middle|> 東京", "crafted/0") for mode in ("flow", "completion", "command")]
    return found


@pytest.mark.parametrize("max_prompt_tokens", [2048, 40])  # 40: every truncation path
def test_every_format_renders_the_same_ids_and_text(reference, fast, max_prompt_tokens):
    family = FAMILIES["qwen2.5-coder"]
    compared = 0
    for task in tasks():
        for name, fmt in FORMATS.items():
            if task.mode not in fmt.modes:
                continue
            for role in ("base", "instruct"):
                if fmt.needs_chat and role == "base":
                    continue
                try:
                    want = render(name, task, reference, family, max_prompt_tokens, role)
                except UserError as err:
                    with pytest.raises(UserError, match=str(err)[:40].replace("(", r"\(").replace(")", r"\)")):
                        render(name, task, fast, family, max_prompt_tokens, role)
                    continue
                assert render(name, task, fast, family, max_prompt_tokens, role) == want, (task.task_id, name, role)
                compared += 1
    assert compared > 40


def test_special_tokens_decoding_and_template_match(reference, fast):
    family = FAMILIES["qwen2.5-coder"]
    assert stop_token_ids(family, fast) == stop_token_ids(family, reference)
    assert pad_token_id(fast, stop_token_ids(family, fast)) == pad_token_id(reference, stop_token_ids(family, reference))
    for attribute in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token", "unk_token_id", "chat_template"):
        assert getattr(fast, attribute) == getattr(reference, attribute), attribute
    ids = reference("".join(TRICKY), add_special_tokens=False)["input_ids"] + [151659, 151643, 151645]
    for skip in (False, True):
        assert fast.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False) == \
            reference.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False)
    assert fast.convert_ids_to_tokens(ids) == reference.convert_ids_to_tokens(ids)
    assert fast.convert_tokens_to_ids("<|fim_middle|>") == reference.convert_tokens_to_ids("<|fim_middle|>")
    assert fast.convert_tokens_to_ids("no-such-token") == reference.convert_tokens_to_ids("no-such-token")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TRICKY[0]},
                {"role": "assistant", "content": TRICKY[1]}, {"role": "user", "content": "again"}]
    for prompt in (False, True):
        assert fast.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt) == \
            reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)


def test_a_folder_transformers_must_wrap_goes_to_autotokenizer(qwen_tokenizer_dir, tmp_path):
    """A tokenizer class this module does not vouch for is loaded by transformers, not guessed at."""
    for name in ("tokenizer.json", "chat_template.jinja"):
        (tmp_path / name).write_bytes((qwen_tokenizer_dir / name).read_bytes())
    config = json.loads((qwen_tokenizer_dir / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "LlamaTokenizerFast"}))
    assert not isinstance(load_tokenizer(tmp_path), FastTokenizer)


def test_a_damaged_tokenizer_json_is_a_clear_error(qwen_tokenizer_dir, tmp_path):
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        (tmp_path / name).write_bytes((qwen_tokenizer_dir / name).read_bytes())
    (tmp_path / "tokenizer.json").write_text('{"model": "truncated')
    with pytest.raises(UserError, match="tokenizer cannot be loaded"):
        load_tokenizer(tmp_path)


def test_loading_the_tokenizer_imports_neither_transformers_nor_torch(qwen_tokenizer_dir):
    code = (f"import sys; from tuningtax.generate.engine import load_tokenizer; load_tokenizer({str(qwen_tokenizer_dir)!r}); "
            "print(sorted(m for m in ('transformers', 'torch') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
