"""An isolated copy of a validated model, cheaper than parsing it again.

A cache hit must hand each caller an object nobody else holds (invariant 3: a
caller's mutation never changes what the store returns to others). Parsing the
cached bytes again costs as much as a read; ``copy.deepcopy`` costs more. A
stored version is a tree of pydantic models, dicts and lists holding immutable
leaves (str, int, float, bool, None, datetime, enums), so copying its
containers and models — and sharing its leaves — isolates it completely.

Each model class gets a copy function generated once from its fields:
straight-line code that copies ``__dict__``, replaces each field that may hold
a container by its copy and sets pydantic's three slots. What is left is the
cost of creating the objects themselves (a few µs per version on an idle
core): this is the isolation floor of every cached read
(docs/filesystem-backend.md, "What a cached read costs").
"""

from __future__ import annotations

from collections.abc import Callable
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


#: The generated copy function of each model class met so far (a dict lookup, where
#: ``isinstance(x, BaseModel)`` goes through pydantic's and ABC's instance checks).
_copiers: dict[type, Callable[[Any], Any]] = {}


def fresh_copy(model: M) -> M:
    """A copy of ``model`` that shares no mutable object with it (models, dicts, lists)."""
    copier = _copiers.get(type(model))
    if copier is None:
        copier = _copier(type(model))
    result: M = copier(model)
    return result


def _copier(cls: type[BaseModel]) -> Callable[[Any], Any]:
    lines = ["def copy(model):", "    fields = model.__dict__.copy()"]
    for name in _container_fields(cls):
        lines += [
            f"    value = fields.get({name!r})",
            "    if value is not None:",
            "        kind = type(value)",
            "        if kind is list:",
            f"            fields[{name!r}] = [v if type(v) in leaves else copy_value(v)"
            " for v in value] if value else []",
            "        elif kind is dict:",
            f"            fields[{name!r}] = {{k: v if type(v) in leaves else copy_value(v)"
            " for k, v in value.items()} if value else {}",
            "        else:",
            "            copier = copiers.get(kind)",
            f"            fields[{name!r}] = copy_value(value) if copier is None"
            " else copier(value)",
        ]
    lines += [
        "    new = new_object(cls)",
        "    set_slot(new, '__dict__', fields)",
        "    set_slot(new, '__pydantic_fields_set__', model.__pydantic_fields_set__.copy())",
        "    extra = model.__pydantic_extra__",
        "    if extra is not None:",
        "        extra = copy_value(extra) if extra else {}",
        "    set_slot(new, '__pydantic_extra__', extra)",
        "    set_slot(new, '__pydantic_private__', model.__pydantic_private__)",
        "    return new",
    ]
    namespace: dict[str, Any] = {
        "cls": cls,
        "new_object": _new,
        "set_slot": _set,
        "copy_value": _copy_value,
        "copiers": _copiers,
        "leaves": _LEAVES,
    }
    exec(compile("\n".join(lines), f"<fresh_copy of {cls.__qualname__}>", "exec"), namespace)
    copier: Callable[[Any], Any] = namespace["copy"]
    _copiers[cls] = copier
    return copier


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [v if type(v) in _LEAVES else _copy_value(v) for v in value]
    if kind is dict:
        return {k: v if type(v) in _LEAVES else _copy_value(v) for k, v in value.items()}
    copier = _copiers.get(kind)
    if copier is not None:
        return copier(value)
    if isinstance(value, BaseModel):
        return _copier(kind)(value)
    if kind is tuple:
        return tuple(_copy_value(v) for v in value)
    if kind is set:
        return set(value)  # sets hold hashable, hence immutable, members
    return value  # Enum, date, Decimal, bytes: immutable
