"""The catalog of pruning methods: importing this package registers each built-in one.

A new method is one file here: a dataclass subclass of ``PruningMethod`` (or ``ScoreMethod``) decorated with
``@register``, imported below. Its fields with a ``flag`` become CLI options of ``prune``, ``run`` and ``sweep``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...errors import InvalidMethodParameterError, UnknownMethodError
from ..base import REGISTRY, PruningMethod
from . import grasp, magnitude, mwanda, ria, snip, sparsegpt, wanda  # noqa: F401  (importing registers them)


def available() -> dict[str, type[PruningMethod]]:
    """Every registered method class, by name."""
    return dict(sorted(REGISTRY.items()))


def parameter_names(name: str) -> set[str]:
    """The parameters method ``name`` takes (its dataclass fields)."""
    cls = _method_class(name)
    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


def get_method(name: str, **params: Any) -> PruningMethod:
    """An instance of method ``name``; ``params`` with value ``None`` keep the method's defaults.

    Raises:
        UnknownMethodError: no method of that name.
        InvalidMethodParameterError: a parameter the method does not take (or out of its range).
    """
    cls = _method_class(name)
    unknown = sorted(set(params) - parameter_names(name))
    if unknown:
        flags = ", ".join(option_flag(name, p) for p in unknown)
        raise InvalidMethodParameterError(f"option(s) {flags} do not apply to method {name}")
    return cls(**{k: v for k, v in params.items() if v is not None})


def method_options() -> list[tuple[str, dataclasses.Field]]:
    """(method name, field) for every parameter that declares a CLI flag."""
    out = []
    for name, cls in available().items():
        if dataclasses.is_dataclass(cls):
            out.extend((name, f) for f in dataclasses.fields(cls) if "flag" in f.metadata)
    return out


def option_flag(method: str, parameter: str) -> str:
    """The CLI flag of a method parameter (``--percdamp``), or the parameter's own name if it has none."""
    for name, field in method_options():
        if name == method and field.name == parameter:
            return str(field.metadata["flag"])
    return "--" + parameter.replace("_", "-")


def _method_class(name: str) -> type[PruningMethod]:
    methods = available()
    if name not in methods:
        raise UnknownMethodError(f"unknown method '{name}'; available: {', '.join(methods)}")
    return methods[name]
