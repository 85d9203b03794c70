"""The one error every loader in this package raises."""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with every non-printable character escaped: a hostile file must
    not be able to break the one-line format or send terminal escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ConfigError(ValueError):
    """A genesis, node-config, key or certificate file is unusable.

    The message is one line that starts with the file's path, so the command
    line can print it as is.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))
