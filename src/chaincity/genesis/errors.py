"""The one error every loader in this package raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A genesis, node-config, key or certificate file is unusable.

    The message is one line that starts with the file's path, so the command
    line can print it as is.
    """
