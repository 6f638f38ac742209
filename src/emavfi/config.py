"""Strict YAML -> dataclass configuration, shared by training and evaluation.

A config is a tree of ``@dataclass`` types. ``load_config(cls, path, overrides)`` reads the YAML
with ``yaml.safe_load``, applies ``--set key=value`` overrides (values parsed as YAML, dotted keys
for nested sections) and builds ``cls``, checking every key on the way:

- an unknown key is an error that names it and suggests the closest known key;
- a value of the wrong type is an error naming the key (``1e-4``, which PyYAML reads as a
  string, is accepted wherever a float is expected; an int is accepted as a float);
- a value outside the range declared in the field's metadata (``bounded(...)``) is an error, and
  so is any float that is not finite (``.inf``, ``.nan``).

All errors are ``EmavfiError`` (one line for the CLI). Configs are values passed down as
arguments, never module globals.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from emavfi.errors import EmavfiError

T = TypeVar("T")


def bounded(
    default: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with a numeric range checked by the loader (``gt`` means ``> gt``)."""
    limits = {"gt": gt, "ge": ge, "le": le, "lt": lt}
    metadata = {"limits": {k: v for k, v in limits.items() if v is not None}}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from the YAML file ``path`` (None: defaults) plus ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise EmavfiError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise EmavfiError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise EmavfiError(f"{path} must hold a mapping of keys to values")
        data = loaded or {}
    data = apply_overrides(data, overrides)
    return from_dict(cls, data)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b=value`` override set (value parsed as YAML)."""
    result = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise EmavfiError(f"--set expects key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise EmavfiError(f"--set {key}: value {raw!r} is not valid YAML") from None
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return result


def from_dict(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a mapping, checking keys, types and ranges."""
    if not isinstance(data, dict):
        raise EmavfiError(
            f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {_kind(data)}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise EmavfiError(f"unknown config key '{prefix}{key}'{hint}")
    missing = [
        n
        for n, f in fields.items()
        if n not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise EmavfiError(f"config key '{prefix}{missing[0]}' is required")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        values[name] = _convert(value, hints[name], key)
        _check_limits(values[name], fields[name].metadata.get("limits", {}), key)
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate()
    return instance


def to_dict(config: Any) -> Any:
    """The plain-data (YAML-safe) form of a config dataclass tree."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, Path):
        return str(config)
    return config


def _convert(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, key)
            except EmavfiError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise EmavfiError(
                f"config key {key!r}: {value!r} is not one of {', '.join(map(repr, args))}"
            )
        return value
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, prefix=f"{key}.")
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise EmavfiError(f"config key {key!r}: expected a list, got {_kind(value)}")
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise EmavfiError(f"config key {key!r}: expected a mapping, got {_kind(value)}")
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): _convert(v, value_type, f"{key}.{k}") for k, v in value.items()}
    return _convert_scalar(value, annotation, key)


def _convert_scalar(value: Any, annotation: Any, key: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise EmavfiError(f"config key {key!r}: {value!r} is impossible, it must be finite")
            return number
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif annotation is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
    else:
        raise TypeError(f"unsupported config annotation {annotation!r} for {key}")
    name = getattr(annotation, "__name__", str(annotation))
    raise EmavfiError(f"config key {key!r}: expected {name}, got {_kind(value)} {value!r}")


def _check_limits(value: Any, limits: dict[str, float], key: str) -> None:
    if not limits or value is None:
        return
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for number in numbers:
        for op, bound in limits.items():
            ok = {
                "gt": number > bound,
                "ge": number >= bound,
                "lt": number < bound,
                "le": number <= bound,
            }[op]
            if not ok:
                sign = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[op]
                raise EmavfiError(
                    f"config key {key!r}: {number!r} is impossible, it must be {sign} {bound}"
                )


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _kind(value: Any) -> str:
    return {
        type(None): "nothing",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
