"""Typed configuration on pydantic: a strict base model, helpers for registry-backed choices, and
validation errors rewritten as one line per problem that names the field, what was found and the fix."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError


class StrictModel(BaseModel):
    """No unknown fields, no silent type coercion ("3" is not an int), immutable once validated."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def choice_of(names: Iterable[str]) -> Any:
    """A Literal of a registry's names: the schema lists them and an unknown name is refused."""
    names = tuple(names)
    if not names:
        raise ValueError("a registry with no entries cannot be a choice")
    return Literal[names]


def _unique(items: list) -> list:
    seen = [x for i, x in enumerate(items) if x in items[:i]]
    if seen:
        raise ValueError(f"{seen[0]!r} is listed twice; list each once")
    return items


def unique_list(item: Any, min_items: int = 1) -> Any:
    """A list of distinct items, at least `min_items` long (JSON Schema: minItems, uniqueItems)."""
    return Annotated[list[item], Field(min_length=min_items, json_schema_extra={"uniqueItems": True}),
                     AfterValidator(_unique)]


def field_path(loc: tuple) -> str:
    parts = ""
    for p in loc:
        parts += f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p))
    return parts or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class reached by following `loc` from `model` (to list the fields it allows)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]  # `part` is an index or a key
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = inner[0] if len(inner) == 1 else tp
            if len(inner) != 1:
                return tp
        else:
            return tp


def problems(err: ValidationError, model: type[BaseModel], prefix: tuple = ()) -> list[str]:
    """One "field PATH: what was wrong; the fix" line per error, in the order pydantic found them."""
    lines = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        is_key = bool(loc) and loc[-1] == "[key]"
        loc = loc[:-1] if is_key else loc
        where = f"field {field_path(prefix + loc)}" + (" (its name)" if is_key else "")
        kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
        if kind == "missing":
            line = f"{where}: missing; add it"
        elif kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1]) if loc else None
            allowed = f" (allowed: {', '.join(owner.model_fields)})" if owner else ""
            line = f"{where}: unknown field {loc[-1]!r}; remove it or fix its spelling{allowed}"
        elif kind in ("literal_error", "enum"):
            line = f"{where}: {value!r} is not one of {ctx.get('expected')}"
        elif kind in ("greater_than_equal", "greater_than"):
            bound = ctx.get("ge", ctx.get("gt"))
            line = f"{where}: {value!r} is less than the minimum {bound}" if kind == "greater_than_equal" \
                else f"{where}: {value!r} must be greater than {bound}"
        elif kind in ("too_short", "string_too_short"):
            line = f"{where}: {value!r} is too short; it needs at least {ctx.get('min_length')} item(s) or character(s)"
        elif kind == "string_pattern_mismatch":
            line = f"{where}: {value!r} must match {ctx.get('pattern')}"
        elif kind == "value_error":
            line = f"{where}: {str(ctx.get('error', e['msg']))}"
        else:
            line = f"{where}: {value!r}: {e['msg'][:1].lower()}{e['msg'][1:]}"
        lines.append(line)
    return list(dict.fromkeys(lines))
