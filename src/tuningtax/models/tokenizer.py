"""The tokenizer of a model folder on the `tokenizers` library alone.

Generation needs encode, decode, token lookups and the chat template. Reaching them through transformers'
AutoTokenizer imports transformers and torch (about 12 s of a generation job's start-up on 2 cores); this
class reads the same files (tokenizer.json, tokenizer_config.json, chat_template.jinja) and renders the chat
template the way transformers 4.57 does (a sandboxed jinja2 environment with trim_blocks and lstrip_blocks,
its `tojson`, `raise_exception` and `strftime_now`). Only tokenizer classes whose transformers wrapper adds
nothing to tokenizer.json are read this way; any other folder goes to AutoTokenizer
(`tuningtax.generate.engine.load_tokenizer`). tests/unit/test_tokenizer.py holds both to the same ids, texts
and templates on every prompt format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

# transformers' classes that wrap tokenizer.json as it is (no BOS/EOS switches rewriting the post-processor,
# no sentencepiece fallback): for these the ids of `tokenizers` alone are the ids of AutoTokenizer.
PLAIN_CLASSES = frozenset({"Qwen2Tokenizer", "Qwen2TokenizerFast", "PreTrainedTokenizerFast", "GPT2Tokenizer",
                           "GPT2TokenizerFast"})
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _content(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken dict."""
    if isinstance(token, dict):
        return token.get("content")
    return token


def read_config(files: Path) -> dict:
    """tokenizer_config.json, with special tokens it lacks taken from special_tokens_map.json."""
    config_path, map_path = files / "tokenizer_config.json", files / "special_tokens_map.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    if map_path.exists():
        for key, value in json.loads(map_path.read_text(encoding="utf-8")).items():
            if config.get(key) is None:
                config[key] = value
    return config


def plain_folder(files: Path) -> bool:
    """Whether this folder's tokenizer can be read by `tokenizers` alone with AutoTokenizer's results."""
    if not (files / "tokenizer.json").exists():
        return False
    config = read_config(files)
    template_file = files / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.exists() else config.get("chat_template")
    # transformers' {% generation %} tag (assistant masks) is an extension of its own jinja environment
    return config.get("tokenizer_class") in PLAIN_CLASSES and not re.search(r"\{%-?\s*generation\s*-?%\}",
                                                                            template or "")


class FastTokenizer:
    """The part of a transformers tokenizer's interface that prompts and generation use."""

    def __init__(self, files: Path):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(files / "tokenizer.json"))
        config = read_config(files)
        template_file = files / "chat_template.jinja"
        self.chat_template: str | None = (template_file.read_text(encoding="utf-8") if template_file.exists()
                                          else config.get("chat_template"))
        self.special_tokens_map: dict[str, Any] = {k: _content(config[k]) for k in SPECIAL_KEYS
                                                   if _content(config.get(k)) is not None}
        extra = [_content(t) for t in config.get("additional_special_tokens") or []]
        if extra:
            self.special_tokens_map["additional_special_tokens"] = extra
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))

    def _special_id(self, key: str) -> int | None:
        token = self.special_tokens_map.get(key)
        return None if token is None else self._tokenizer.token_to_id(token)

    @property
    def bos_token_id(self) -> int | None:
        return self._special_id("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._special_id("eos_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._special_id("pad_token")

    @property
    def unk_token(self) -> str | None:
        return self.special_tokens_map.get("unk_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._special_id("unk_token")

    def __call__(self, text: str, add_special_tokens: bool = True, split_special_tokens: bool = False,
                 return_offsets_mapping: bool = False) -> dict[str, list]:
        # transformers sets the same switch on the same Rust tokenizer for split_special_tokens
        self._tokenizer.encode_special_tokens = split_special_tokens
        encoding = self._tokenizer.encode(text, add_special_tokens=add_special_tokens)
        result: dict[str, list] = {"input_ids": list(encoding.ids)}
        if return_offsets_mapping:
            result["offset_mapping"] = list(encoding.offsets)
        return result

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self(text, add_special_tokens=add_special_tokens)["input_ids"]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        text = self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        if clean:  # transformers' clean_up_tokenization
            for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(before, after)
        return text

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        return [self._tokenizer.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, token: str) -> int | None:
        found = self._tokenizer.token_to_id(token)
        return self.unk_token_id if found is None else found

    @cached_property
    def _template(self) -> Any:
        import jinja2
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise jinja2.exceptions.TemplateError(message)

        def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
                   sort_keys: bool = False) -> str:
            return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        environment.filters["tojson"] = tojson
        environment.globals["raise_exception"] = raise_exception
        environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return environment.from_string(self.chat_template)

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = True,
                            add_generation_prompt: bool = False) -> str | list[int]:
        if not self.chat_template:
            raise ValueError("this tokenizer has no chat template")
        text = self._template.render(messages=messages, tools=None, documents=None,
                                     add_generation_prompt=add_generation_prompt, **self.special_tokens_map)
        return self(text, add_special_tokens=False)["input_ids"] if tokenize else text
