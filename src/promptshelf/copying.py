"""An isolated copy of a validated model, cheaper than parsing it again.

A cache hit must hand each caller an object nobody else holds (invariant 3: a
caller's mutation never changes what the store returns to others). Parsing the
cached bytes again costs as much as a read; ``copy.deepcopy`` costs more. A
stored version is a tree of pydantic models, dicts and lists holding immutable
leaves (str, int, float, bool, None, datetime, enums), so copying its
containers and models — and sharing its leaves — isolates it completely.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_LEAVES = frozenset({str, int, float, bool, type(None), datetime})
_new = object.__new__
_set = object.__setattr__


@cache
def _container_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``cls`` whose values may be mutable (all but str, int, datetime, enums…)."""

    def leaf(annotation: Any) -> bool:
        if get_origin(annotation) is not None:  # Optional[str], Literal[...], list[...]
            args = get_args(annotation)
            return all(isinstance(a, str) or leaf(a) for a in args) and get_origin(
                annotation
            ) not in (list, dict, set, tuple)
        return annotation in _LEAVES or (
            isinstance(annotation, type) and issubclass(annotation, Enum)
        )

    return tuple(name for name, info in cls.model_fields.items() if not leaf(info.annotation))


def fresh_copy(model: M) -> M:
    """A copy of ``model`` that shares no mutable object with it (models, dicts, lists)."""
    cls = type(model)
    new = _new(cls)
    fields = model.__dict__.copy()
    for name in _container_fields(cls):
        value = fields.get(name)
        if value is not None:
            fields[name] = _copy_value(value)
    _set(new, "__dict__", fields)
    _set(new, "__pydantic_fields_set__", model.__pydantic_fields_set__.copy())
    extra = model.__pydantic_extra__
    _set(new, "__pydantic_extra__", None if extra is None else _copy_value(extra))
    _set(new, "__pydantic_private__", model.__pydantic_private__)
    return new


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [v if type(v) in _LEAVES else _copy_value(v) for v in value]
    if kind is dict:
        return {k: v if type(v) in _LEAVES else _copy_value(v) for k, v in value.items()}
    if isinstance(value, BaseModel):
        return fresh_copy(value)
    if kind is tuple:
        return tuple(_copy_value(v) for v in value)
    if kind is set:
        return set(value)  # sets hold hashable, hence immutable, members
    return value  # Enum, date, Decimal, bytes: immutable
