"""One checkpoint of params.yaml's ``models:`` mapping: its typed definition (the params schema reads it) and
the source kinds it may come from. Validated once, here, with errors that name the field."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, model_validator

from tuningtax.errors import UserError
from tuningtax.models.families import FAMILIES
from tuningtax.typed import StrictModel, choice_of, problems

ROLES = ("base", "instruct", "checkpoint")
OFFLINE_QWEN = "offline-qwen2.5-coder-0.5b-instruct"
SOURCE_KINDS = ("offline", "gguf", "local", "hub")
FIELDS = ("name", "family", "role", "source", "revision", "step")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
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


class ModelEntry(StrictModel):
    """One checkpoint (keyed by its name): base, instruct, or an intermediate tuning checkpoint (role checkpoint
    + step)."""
    family: choice_of(FAMILIES) = Field(description="FIM template, stop tokens, chat handling")
    role: choice_of(ROLES)
    source: str = Field(min_length=1, description="hub id (owner/name), ./local/hf/folder, a .gguf file, "
                                                  "or offline-qwen2.5-coder-0.5b-instruct")
    revision: str | None = Field(None, description="hub revision or commit (required for hub ids)")
    step: int | None = Field(None, description="training step (role checkpoint only)")
    size_b: float | None = Field(None, gt=0, description="billions of parameters, for the resources a cluster job "
                                                         "asks for (default: read from the name or source, else 1)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.role == "checkpoint":
            if self.step is None or self.step < 0:
                raise ValueError(f"role checkpoint needs field step, a non-negative integer; got {self.step!r}")
        elif self.step is not None:
            raise ValueError(f"field step is only for role checkpoint (role is {self.role}); remove it")
        try:
            kind = source_kind(self.source)
        except UserError as err:
            raise ValueError(f"field {err}") from None
        if kind == "hub" and not self.revision:
            raise ValueError(f"hub source {self.source!r} needs field revision (a commit hash, or 'main' to take "
                             "whatever is newest; the value is recorded with the results)")
        return self


class ModelSpec(ModelEntry):
    """A models: entry together with its name, as the commands receive it (--spec-json)."""
    # The name becomes a folder (data/04_onnx/NAME/...) and a Snakemake wildcard: keep it path-safe.
    name: str = Field(pattern=NAME_PATTERN)

    @property
    def source_kind(self) -> str:
        return source_kind(self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.model_dump(exclude={"name"})}

    @classmethod
    def from_dict(cls, d: Any, where: str = "model spec") -> ModelSpec:
        if not isinstance(d, dict):
            raise UserError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}, got {type(d).__name__}")
        name = d.get("name")
        if isinstance(name, str) and name and name not in where:
            where = f"{where} ({name})"
        try:
            return cls.model_validate(d)
        except ValidationError as err:
            raise UserError(f"{where}: " + "; ".join(problems(err, cls))) from None
