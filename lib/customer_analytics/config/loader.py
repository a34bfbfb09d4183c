"""
The one loader of configuration: read a YAML file, apply ``--set a.b=value`` overrides and
validate the whole against :mod:`customer_analytics.config.schema` before any Spark work starts.

Values of overrides are parsed as YAML (``--set segmentation.k=4`` gives an int). Any problem
raises :class:`ConfigError` with one line naming where the value came from and the key, e.g.
``conf/local.yaml: segmentation.k_min: Input should be greater than or equal to 2 (got 1)``
or ``--set source.kind: Input should be ... (got 'bogus')``.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from pydantic import ValidationError

from customer_analytics.config.schema import Config
from customer_analytics.core.connect import hide_token
from customer_analytics.core.errors import ConfigError


def with_overrides(config: Config, overrides: list[str]) -> Config:
    """A validated copy of ``config`` with ``a.b=value`` overrides applied."""
    raw = apply_overrides(config.model_dump(mode="json"), overrides)
    return from_dict(raw, overridden=_override_keys(overrides))


def load(path: str | os.PathLike, overrides: list[str] | None = None) -> Config:
    """
    Read, override and validate a configuration file.

    Parameters
    ----------
    path : str or path-like
        A YAML file whose top level is a mapping of sections.
    overrides : list of str, optional
        ``section.key=value`` strings; the value is parsed as YAML (``3`` -> int,
        ``[a, b]`` -> list, ``null`` -> None). The key may be new to the file but must be
        known to the schema.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        One line naming the file, the key or the override at fault.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"configuration file not found: {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}:{where} is not valid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    overrides = overrides or []
    return from_dict(
        apply_overrides(raw, overrides), origin=path, overridden=_override_keys(overrides)
    )


def from_dict(
    raw: dict[str, Any],
    origin: str = "configuration",
    overridden: list[tuple[str, ...]] | None = None,
) -> Config:
    """
    Validate a configuration mapping; raise :class:`ConfigError` naming the key at fault and
    where its value came from: ``--set <key>`` for a key under one of the ``overridden`` keys
    (as :func:`_key_parts` splits them), else ``origin``.
    """
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, overridden or [])) from None


def _override_keys(overrides: list[str]) -> list[tuple[str, ...]]:
    return [tuple(_key_parts(item.partition("=")[0].strip())) for item in overrides]


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` override set (value parsed as YAML)."""
    result = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        node = result
        parts = _key_parts(key)
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {item!r}: {where} is not a section")
            node = child
        node[parts[-1]] = value
    return result


#: Sections whose keys are free-form and may contain dots (``spark.sql.shuffle.partitions``).
FREE_FORM_SECTIONS = (("spark", "conf"), ("source", "columns"), ("source", "read_options"))


def _key_parts(key: str) -> list[str]:
    parts = key.split(".")
    for section in FREE_FORM_SECTIONS:
        if tuple(parts[: len(section)]) == section and len(parts) > len(section):
            return [*section, ".".join(parts[len(section) :])]
    return parts


def _describe(exc: ValidationError, origin: str, overridden: list[tuple[str, ...]]) -> str:
    parts = []
    for error in exc.errors():
        subkey = (error.get("ctx") or {}).get("subkey")  # set by a validator of a list
        loc = [*error["loc"], subkey] if subkey else error["loc"]
        key = ".".join(str(p) for p in loc) or "(top level)"
        path = tuple(str(p) for p in loc)
        override = next(
            (o for o in overridden if path[: len(o)] == o or (path and o[: len(path)] == path)),
            None,
        )
        where = origin if override is None else f"--set {'.'.join(override)}"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required value is missing"
        elif error["type"] in ("feature_name", "credentials", "remote"):
            pass  # the message names what is wrong, and a secret is not repeated
        elif "input" in error and not isinstance(error["input"], dict | list):
            message = f"{message} (got {error['input']!r})"
        named = where if override == path else f"{where}: {key}"
        parts.append(f"{named}: {message}")
    return hide_token("; ".join(parts))


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
