"""Errors a user can fix: each carries one line that names the key, path or column at fault."""


class UserError(Exception):
    """A problem with the configuration or the input, reported in one line with exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """The configuration file or an override is missing, malformed or invalid."""


class InputError(UserError):
    """An input path, file format or required column is missing or wrong."""
