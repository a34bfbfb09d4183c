"""Path strings as the user writes them: local paths and URIs (``s3a://``, ``dbfs:/``) alike."""

from __future__ import annotations


def join(base: str, *parts: str) -> str:
    """
    ``base/part/...`` for local paths and URIs alike (``os.path.join`` is for local paths).

    >>> join("s3a://bucket/wh/", "_models", "run-1")
    's3a://bucket/wh/_models/run-1'
    """
    path = base.rstrip("/") or "/"
    for part in parts:
        path = f"{path.rstrip('/')}/{part.strip('/')}"
    return path


def has_scheme(path: str) -> bool:
    """
    True for ``s3a://bucket/x``, ``dbfs:/x``, ``file:/x``; false for ``/x``, ``x`` and ``C:\\x``.

    >>> [has_scheme(p) for p in ("s3a://b/x", "dbfs:/x", "/x", "x")]
    [True, True, False, False]
    """
    scheme, sep, _ = path.partition(":")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()
