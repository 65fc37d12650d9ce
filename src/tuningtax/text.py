"""The text rules every reader of model output shares: lines that keep their newlines, markdown fences,
family sentinels, natural-language chatter and the "does this program compile" check.

Post-processing, the behavioural metrics and the failure taxonomy all read output through these, so a
fence that one of them sees is a fence for all. Nothing here strips whitespace off code: indentation and
newlines are part of a middle.
"""

from __future__ import annotations

import keyword
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from tuningtax.models.families import FAMILIES

# Only "\n" ends a line: str.splitlines() also splits on \r, \f, \x1c, \u2028 ..., which Python source
# may contain inside string literals, and would then reassemble differently.
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")

# Sentinels that sometimes come back as plain text (a base model spelling them out token by token, or a
# decode that kept specials): every special token of every registered family, as it reads in decoded text.
# Cut exactly where one starts, even mid-line: nothing after it belongs to the answer.
SENTINELS: tuple[str, ...] = tuple(sorted({t for f in FAMILIES.values() for t in f.sentinels}, key=lambda t: (-len(t), t)))
_SENTINEL_RE = re.compile("|".join(map(re.escape, SENTINELS))) if SENTINELS else re.compile(r"(?!)")

PYTHON_FENCE_TAGS = frozenset({"python", "py", "python3", "py3"})


def lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; "".join(lines(t)) == t."""
    return _LINE_RE.findall(text)


def split_lines(text: str) -> list[str]:
    """Lines without their "\n" (only "\n" splits); [] for ""."""
    return text.split("\n") if text else []


def nonblank(ls: list[str]) -> list[str]:
    return [line for line in ls if line.strip()]


def find_sentinel(text: str) -> int:
    """Index where the first family sentinel starts, -1 when none."""
    m = _SENTINEL_RE.search(text)
    return m.start() if m else -1


def cut_at_sentinel(text: str) -> str:
    i = find_sentinel(text)
    return text[:i] if i >= 0 else text


@lru_cache(maxsize=8192)
def compiles(source: str) -> bool:
    """True when `source` compiles as a module. compile() rather than ast.parse(): it also rejects what
    only the compiler sees ('return' outside function, 'break' outside loop), which would fail at run time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning on odd escape sequences is not a parse failure
        try:
            compile(source, "<candidate>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


# ---------------------------------------------------------------------------------------------- fences

# CommonMark fences: three or more backticks or tildes, up to 3 spaces in; a backtick fence's info string
# has no backtick. A block closes at a fence of the same character, at least as long, with no info string.
_FENCE_RE = re.compile(r"^[ \t]{0,3}(?:(`{3,})[ \t]*([^\s`]*)[^\n`]*|(~{3,})[ \t]*([^\s]*)[^\n]*)$")


def _fence(line: str) -> tuple[str, str] | None:
    """(fence run, lower-case tag) when the line opens or closes a fence, else None."""
    m = _FENCE_RE.match(line.rstrip("\n"))
    if not m:
        return None
    return (m.group(1), m.group(2) or "") if m.group(1) else (m.group(3), m.group(4) or "")


def _closes(line: str, opener: str) -> bool:
    fence = _fence(line)
    return fence is not None and fence[1] == "" and fence[0][0] == opener[0] and len(fence[0]) >= len(opener) \
        and line.strip() == fence[0]


@dataclass(frozen=True)
class Fence:
    tag: str  # language tag, lower case, "" when none
    start: int  # line index of the opening fence (-1: implied at the start of the text)
    end: int  # line index of the closing fence, or len(lines) when the block is unclosed
    content: str  # the lines in between, exactly as written


def fenced_blocks(text: str) -> list[Fence]:
    ls = lines(text)
    blocks: list[Fence] = []
    i = 0
    while i < len(ls):
        fence = _fence(ls[i])
        if not fence:
            i += 1
            continue
        opener, tag = fence
        before = nonblank(ls[:i]) if not blocks and not tag else []
        if before and not any(is_prose(line) for line in before):
            # A bare fence after code and no opening fence: the answer began inside an implied block
            # (a completion that goes on "```\n\nThis code ..."), so the fence closes it.
            blocks.append(Fence("", -1, i, "".join(ls[:i])))
            i += 1
            continue
        j = i + 1
        while j < len(ls) and not _closes(ls[j], opener):
            j += 1
        blocks.append(Fence(tag.lower(), i, j, "".join(ls[i + 1:j])))
        i = j + 1
    return blocks


def pick_code_block(blocks: list[Fence]) -> Fence | None:
    """The first python-tagged block, else the first untagged one, else the first of any language."""
    for wanted in (lambda b: b.tag in PYTHON_FENCE_TAGS, lambda b: b.tag == "", lambda b: True):
        for block in blocks:
            if wanted(block):
                return block
    return None


# ---------------------------------------------------------------------------------------------- prose

_KEYWORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
# Sentence shape: optional markdown bullet/emphasis, then a word followed by a space and another word
# ("Here is", "This function", "- The loop"); or a lone capitalised word with punctuation ("Sure!").
_SENTENCE_RE = re.compile(r"^(?:[-*>]+\s*|\d+[.)]\s+|\*\*)?([A-Za-z][\w'’]*)[,:!.]?\s+[A-Za-z`'\"(*]")
_INTERJECTION_RE = re.compile(r"^\**([A-Z][\w'’]*)\**[!.:]\**$")


_TRIPLE_RE = re.compile(r'"""|\'\'\'')


def string_state(text: str, state: str | None = None) -> str | None:
    """The triple-quote delimiter still open at the end of `text` (None when none), starting from
    `state`. Approximate (a triple quote inside a one-line string or comment miscounts), which is enough to
    keep the content of docstrings and multi-line strings from being judged as chatter."""
    for m in _TRIPLE_RE.finditer(text):
        if state is None:
            state = m.group()
        elif m.group() == state:
            state = None
    return state


def is_prose(line: str) -> bool:
    """A chat line at column 0 that is not Python: "Here is the code:", "Sure!", "**Explanation:**".

    Conservative on purpose: a line counts as prose only when it does not compile (alone or as a block
    header), does not start with a Python keyword (so `except ValueError:` and `else:` stay code) and has
    the shape of a sentence. Indented lines are never prose: chatter is not indented, code often is."""
    text = line.rstrip("\n").rstrip("\r")
    if not text.strip() or text[0] in " \t":
        return False
    m = _SENTENCE_RE.match(text) or _INTERJECTION_RE.match(text)
    if not m or m.group(1) in _KEYWORDS:
        return False
    return not (compiles(text + "\n") or compiles(text + "\n    pass\n"))


# ---------------------------------------------------------------------------------------------- context

def hole_in_block(prefix: str, suffix: str) -> bool:
    """Whether the hole sits inside an indented block (a function or class body), judged from the task's
    own text, never from the model's output.

    - The hole continues a line (the prefix ends mid-line): that line's indentation decides.
    - The hole starts a line: inside a block when the next code line is indented, or when the previous one
      is indented or opens a block. "Previous line indented, next line at column 0 or none" is ambiguous
      (the hole may end the function body or be module-level code after it); it counts as inside, because
      the benchmark this project centres on (HumanEval infilling) only has holes inside function bodies.
    """
    tail = prefix[prefix.rfind("\n") + 1:]
    if tail:
        return tail[0] in " \t"
    after = nonblank(lines(suffix))
    if after and after[0][0] in " \t":
        return True
    before = nonblank(lines(prefix))
    if not before:
        return False
    last = before[-1].rstrip()
    return last[0] in " \t" or last.endswith(":")


def continues_line(prefix: str) -> bool:
    """The hole starts mid-line: the middle's first line is the rest of a line of the prefix."""
    return bool(prefix) and not prefix.endswith("\n")


def is_fence(line: str) -> bool:
    return _fence(line) is not None


def defines(code: str, name: str) -> bool:
    return re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None


def continues_prompt(text: str, prompt: str, entry_point: str) -> bool:
    """A command-mode answer that is the body of the prompt's function (a base model continuing the
    plain prompt) rather than a whole program: it starts indented and lacks the `def` the prompt has."""
    first = next((line for line in lines(text) if line.strip()), "")
    return (first[:1] in (" ", "\t") and bool(entry_point) and defines(prompt, entry_point)
            and not defines(text, entry_point))


def cut_at_column0(text: str) -> str:
    """Keep lines up to the first line (after the first) that starts at column 0 with a non-blank
    character: such a line closes every enclosing block, so for a hole inside a block it is code the
    model wrote past the hole (a new def/class, a test, a print, a `# Example` comment, a fence, prose).
    The kept text keeps its last newline and any blank lines before the cut."""
    ls = lines(text)
    for i in range(1, len(ls)):
        if ls[i].strip() and ls[i][0] not in " \t":
            return "".join(ls[:i])
    return text
