"""Model families: FIM templates, stop tokens and BOS handling, as declarative data plus tiny helpers.

Prompts are rendered as token ids, never as one string for the tokenizer to re-parse: special tokens
are looked up with ``convert_tokens_to_ids`` and text segments are encoded with
``add_special_tokens=False`` and ``split_special_tokens=True`` (so a literal "<|endoftext|>" inside
benchmark code stays text). Nothing is added that the family's reference usage does not add: one stray
token before the FIM prefix cost DeepSeek-Coder about 8 points (DeepSeek-Coder issue 84, where the
extra text sat between ``<｜fim▁begin｜>`` and the prefix).

Sources for the templates: the study's FIM table (shared/reference/study.md), each family's model card
or reference code (Qwen2.5-Coder README, DeepSeek-Coder README "code insertion", bigcode Megatron-LM
``permute`` for StarCoder, Meta's codellama ``infilling_prompt_tokens``, Google's CodeGemma prompt
structure page). SPM is declared only where its exact layout was found; elsewhere it is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuningtax.errors import UserError

PREFIX = "{prefix}"
SUFFIX = "{suffix}"
FIM_MODES = ("psm", "spm")
# Marker used to strip SentencePiece's dummy leading space (Meta's encode_infilling uses the same trick).
_NO_SPACE_MARK = "☺"


@dataclass(frozen=True)
class Family:
    name: str
    # FIM layouts as parts: PREFIX / SUFFIX slots, every other part is one special token's vocabulary string.
    psm: tuple[str, ...] | None
    spm: tuple[str, ...] | None
    stop_tokens: tuple[str, ...]  # exact vocabulary strings; the tokenizer's own EOS is always added
    bos: bool  # True where the reference usage starts the prompt with the tokenizer's BOS token
    suffix_without_leading_space: bool = False  # CodeLlama: suffix encoded without SentencePiece's dummy space
    # Other special tokens that must never appear in an answer (chat markers, repository tokens).
    specials: tuple[str, ...] = ()
    note: str = ""

    @property
    def sentinels(self) -> tuple[str, ...]:
        """Every special token of the family as it reads in decoded text (SentencePiece's "▁" as nothing):
        the strings post-processing cuts at and the metrics count as leaks."""
        parts = [p for layout in (self.psm, self.spm) if layout for p in layout if p not in (PREFIX, SUFFIX)]
        return tuple(dict.fromkeys(t.lstrip("▁") for t in (*parts, *self.stop_tokens, *self.specials)))

    @property
    def has_fim(self) -> bool:
        return self.psm is not None

    def layout(self, mode: str = "psm") -> tuple[str, ...]:
        if mode not in FIM_MODES:
            raise UserError(f"FIM mode {mode!r} is unknown; expected one of {', '.join(FIM_MODES)}")
        parts = self.psm if mode == "psm" else self.spm
        if parts is None:
            what = "no FIM training" if self.psm is None else f"no documented {mode.upper()} layout"
            raise UserError(f"model family {self.name!r} has {what}; use another prompt format for it")
        return parts

    def template(self, mode: str = "psm") -> str:
        """Human-readable form, e.g. ``<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>``."""
        return "".join(self.layout(mode))


_QWEN_STOPS = ("<|endoftext|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
               "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")
_DS_BEGIN, _DS_HOLE, _DS_END = "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"  # full-width bars, U+2581

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="qwen2.5-coder",
            psm=("<|fim_prefix|>", PREFIX, "<|fim_suffix|>", SUFFIX, "<|fim_middle|>"),
            spm=None,  # trained and documented in PSM only
            stop_tokens=_QWEN_STOPS,
            specials=("<|im_start|>",),
            # Qwen has no BOS; tokenizers converted from GGUF report <|endoftext|> as bos_token: never add it.
            bos=False,
        ),
        Family(
            name="deepseek-coder",
            psm=(_DS_BEGIN, PREFIX, _DS_HOLE, SUFFIX, _DS_END),
            spm=None,  # the paper trains PSM only
            stop_tokens=("<｜end▁of▁sentence｜>", _DS_BEGIN, _DS_HOLE, _DS_END, "<|EOT|>"),
            specials=("<｜begin▁of▁sentence｜>",),
            # The README's insertion example passes the prompt through tokenizer(...), which prepends
            # <｜begin▁of▁sentence｜> (add_bos_token is true there); nothing else goes before <｜fim▁begin｜>.
            bos=True,
            note="instruct models end turns with <|EOT|>",
        ),
        Family(
            name="starcoder2",
            psm=("<fim_prefix>", PREFIX, "<fim_suffix>", SUFFIX, "<fim_middle>"),
            # bigcode's Megatron SPM is <fim_prefix><fim_suffix>{s}<fim_middle>{p}, but no StarCoder2 source
            # found here says it was trained with SPM: left unsupported rather than guessed.
            spm=None,
            stop_tokens=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>"),
            specials=("<repo_name>", "<reponame>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
                      "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
                      "<jupyter_script>", "<empty_output>", "<commit_before>", "<commit_msg>", "<commit_after>"),
            bos=False,
        ),
        Family(
            name="codellama",
            # Meta's reference: [BOS, PRE] + encode(p) + [SUF] + encode_infilling(s) + [MID], printed as
            # "<PRE> {p} <SUF>{s} <MID>": the spaces are the "▁" inside the token strings and SentencePiece's
            # dummy space before p; the suffix is encoded without it.
            psm=("▁<PRE>", PREFIX, "▁<SUF>", SUFFIX, "▁<MID>"),
            spm=("▁<PRE>", "▁<SUF>", SUFFIX, "▁<MID>", PREFIX),  # "<PRE> <SUF>{s} <MID> {p}"
            stop_tokens=("▁<EOT>",),
            specials=("</s>",),
            bos=True,
            suffix_without_leading_space=True,
            note="7B/13B/70B base and instruct only: the 34B models were not trained for infilling",
        ),
        Family(
            name="codegemma",
            psm=("<|fim_prefix|>", PREFIX, "<|fim_suffix|>", SUFFIX, "<|fim_middle|>"),
            spm=None,  # trained with SPM too, but the exact SPM layout is not documented
            stop_tokens=("<|file_separator|>", "<end_of_turn>", "<eos>", "<|fim_prefix|>", "<|fim_suffix|>",
                         "<|fim_middle|>"),
            specials=("<start_of_turn>", "<bos>", "<pad>"),
            bos=True,  # Gemma models expect <bos>; the model card's tokenizer(...) call adds it
        ),
        Family(
            name="generic",
            psm=None,
            spm=None,
            stop_tokens=(),
            bos=False,
            note="no FIM training: use a hole-filler or completion prompt; the task supplies its own stops",
        ),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise UserError(f"model family {name!r} is unknown; known families: {', '.join(FAMILIES)}") from None


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of one vocabulary string, or None when the tokenizer does not have it (no unk fallback)."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        return None
    return int(tid)


def stop_token_ids(family: Family | str, tokenizer: Any) -> list[int]:
    """Ids of the family's stop strings present in this vocabulary, plus the tokenizer's EOS; ordered, unique."""
    fam = get_family(family) if isinstance(family, str) else family
    ids = [token_id(tokenizer, s) for s in fam.stop_tokens]
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return list(dict.fromkeys(i for i in ids if i is not None))


def pad_token_id(tokenizer: Any, stop_ids: list[int]) -> int:
    """The id used for left padding: masked out, so any id works; the tokenizer's own pad when it has one."""
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0] if stop_ids else 0)


def encode_text(tokenizer: Any, text: str, leading_space: bool = True) -> list[int]:
    """Plain text to ids: no special tokens added, special-token look-alikes in the text kept as text."""
    if not text:
        return []
    if leading_space:
        return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    mark = encode_text(tokenizer, _NO_SPACE_MARK)
    ids = encode_text(tokenizer, _NO_SPACE_MARK + text)
    if ids[: len(mark)] != mark:
        raise UserError(f"cannot encode {text[:20]!r} without a leading space with {type(tokenizer).__name__}")
    return ids[len(mark):]


def bos_ids(family: Family, tokenizer: Any) -> list[int]:
    """[BOS] where the family's reference prompt starts with it, else []."""
    if not family.bos:
        return []
    if tokenizer.bos_token_id is None:
        raise UserError(f"model family {family.name!r} starts prompts with BOS but the tokenizer has no bos_token")
    return [int(tokenizer.bos_token_id)]


def fim_ids(family: Family | str, tokenizer: Any, prefix: str, suffix: str, mode: str = "psm") -> list[int]:
    """The FIM prompt as token ids, exactly the family's layout (BOS included only where the family uses it)."""
    fam = get_family(family) if isinstance(family, str) else family
    ids = bos_ids(fam, tokenizer)
    for part in fam.layout(mode):
        if part == PREFIX:
            ids += encode_text(tokenizer, prefix)
        elif part == SUFFIX:
            ids += encode_text(tokenizer, suffix, leading_space=not fam.suffix_without_leading_space)
        else:
            tid = token_id(tokenizer, part)
            if tid is None:
                raise UserError(
                    f"the tokenizer has no {part!r} token required by family {fam.name!r}: "
                    "check the model's family field in params.yaml"
                )
            ids.append(tid)
    return ids


def wants_chat_template(role: str, tokenizer: Any) -> bool:
    """Instruct models (and fine-tuned checkpoints that ship one) get the tokenizer's own chat template;
    base models get a plain prompt. An instruct model without a chat template is a configuration error."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if role == "instruct" and not has_template:
        raise UserError("role instruct needs a tokenizer with a chat_template; none found in the model folder")
    return role != "base" and has_template
