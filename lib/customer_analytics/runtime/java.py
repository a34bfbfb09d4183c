"""Finding the Java runtime Spark needs, before anything tries to start a JVM."""

from __future__ import annotations

import os
import shutil

from customer_analytics.core.errors import UserError


class JavaMissingError(UserError):
    """Spark needs a Java runtime and none was found."""


def java_executable() -> str | None:
    """``$JAVA_HOME/bin/java`` when it exists, else ``java`` on the ``PATH``, else None."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def check_java() -> None:
    """Raise :class:`JavaMissingError` with one line when no ``java`` can be found."""
    if java_executable() is None:
        raise JavaMissingError(
            "Java was not found: Spark needs Java 17 or 21 (install it, e.g. "
            "'apt-get install openjdk-17-jre-headless', or set JAVA_HOME)"
        )
