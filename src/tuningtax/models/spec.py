"""One model entry of params.yaml's ``models:`` list, validated with errors that name the field."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from tuningtax.errors import UserError

ROLES = ("base", "instruct", "checkpoint")
OFFLINE_QWEN = "offline-qwen2.5-coder-0.5b-instruct"
SOURCE_KINDS = ("offline", "gguf", "local", "hub")
FIELDS = ("name", "family", "role", "source", "revision", "step")

# The name becomes a folder (data/03_onnx/NAME/...) and a Snakemake wildcard: keep it path-safe.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# A hub id is exactly owner/name; local folders must look like paths so the two never get confused.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_LOCAL_PREFIXES = ("/", "./", "../", "~")


def source_kind(source: str) -> str:
    """offline | gguf | local | hub, decided from the string alone (no filesystem or network look-up)."""
    if source == OFFLINE_QWEN:
        return "offline"
    if source.endswith(".gguf"):
        return "gguf"
    if source.startswith(_LOCAL_PREFIXES) or source in (".", ".."):
        return "local"
    if _HUB_ID.match(source):
        return "hub"
    raise UserError(
        f"source {source!r} is neither a hub id (owner/name), a local HF folder (write it as ./path or /path), "
        f"a .gguf file, nor {OFFLINE_QWEN!r}"
    )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # key of tuningtax.models.families.FAMILIES
    role: str  # base | instruct | checkpoint
    source: str  # hub id | ./local/hf/folder | path/to/file.gguf | offline-qwen2.5-coder-0.5b-instruct
    revision: str | None = None  # hub revision or commit (required for hub ids; "main" is allowed and recorded)
    step: int | None = None  # training step, checkpoints only

    @property
    def source_kind(self) -> str:
        return source_kind(self.source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "model spec") -> ModelSpec:
        from tuningtax.models.families import FAMILIES

        if not isinstance(d, dict):
            raise UserError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}, got {type(d).__name__}")
        unknown = sorted(set(d) - set(FIELDS))
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}; allowed: {', '.join(FIELDS)}")
        missing = [f for f in ("name", "family", "role", "source") if d.get(f) in (None, "")]
        if missing:
            raise UserError(f"{where}: missing field(s) {', '.join(missing)}")
        for f in ("name", "family", "role", "source", "revision"):
            if d.get(f) is not None and not isinstance(d[f], str):
                raise UserError(f"{where}: field {f} must be a string, got {d[f]!r}")
        name = d["name"]
        where = f"{where} ({name})" if name and name not in where else where
        if not _NAME.match(name):
            raise UserError(f"{where}: field name {name!r} must match {_NAME.pattern} (it becomes a folder name)")
        if d["family"] not in FAMILIES:
            raise UserError(f"{where}: field family {d['family']!r} is unknown; known: {', '.join(FAMILIES)}")
        if d["role"] not in ROLES:
            raise UserError(f"{where}: field role {d['role']!r} is unknown; expected one of {', '.join(ROLES)}")
        step = d.get("step")
        if d["role"] == "checkpoint":
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise UserError(f"{where}: role checkpoint needs field step, a non-negative integer; got {step!r}")
        elif step is not None:
            raise UserError(f"{where}: field step is only for role checkpoint (role is {d['role']}); remove it")
        try:
            kind = source_kind(d["source"])
        except UserError as err:
            raise UserError(f"{where}: field {err}") from None
        revision = d.get("revision")
        if kind == "hub" and not revision:
            raise UserError(
                f"{where}: hub source {d['source']!r} needs field revision (a commit hash, or 'main' to take "
                "whatever is newest; the value is recorded with the results)"
            )
        return cls(name=name, family=d["family"], role=d["role"], source=d["source"], revision=revision, step=step)
