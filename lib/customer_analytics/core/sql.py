"""
Names in SQL statements: identifiers quoted with backticks, and the catalog and schema names
the configuration may give (``warehouse.catalog``, ``warehouse.schema``) checked before use.
"""

from __future__ import annotations

import re

#: A catalog or schema name this package accepts: letters, digits, ``_`` and ``-`` (Unity
#: Catalog's names, which need quoting when they hold a ``-``), at most 255 characters.
IDENTIFIER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,254}")


def quoted(identifier: str) -> str:
    """``identifier`` in backticks, a backtick inside it doubled: `` `a``b` ``."""
    return "`" + identifier.replace("`", "``") + "`"


def qualified_name(*parts: str | None) -> str:
    """The parts that are set, each quoted, joined with dots: ```main`.`ca`.`orders```."""
    return ".".join(quoted(part) for part in parts if part)


def check_identifier(value: str, what: str) -> str:
    """``value`` when it is a name :data:`IDENTIFIER` accepts; ``ValueError`` otherwise."""
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not a name: letters, digits, '_' and '-' only "
            "(at most 255), starting with a letter, digit or '_'"
        )
    return value
