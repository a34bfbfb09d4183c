"""Errors a user can fix: each carries one line that names the key, path or column at fault."""


class UserError(Exception):
    """
    A problem the user can act on, reported in one line without a stack trace: exit code 2 (the
    configuration or the input), or the subclass's ``exit_code``.
    """

    exit_code = 2


class ConfigError(UserError):
    """The configuration file or an override is missing, malformed or invalid."""


class InputError(UserError):
    """An input path, file format or required column is missing or wrong."""


class ConcurrentWriteError(UserError):
    """
    Another run committed to a table while this run was writing it. This run's write was not
    committed; rerunning once the other run has finished succeeds. Exit code 3, so that a
    scheduler can tell it from bad input (2) and retry.
    """

    exit_code = 3


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s message, at most ``limit`` characters, or its type's name."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
