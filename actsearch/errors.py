"""The one exception type for mistakes a user can make, and keeping secrets out of messages."""

from __future__ import annotations

import re

EXIT_INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C or SIGTERM (128 + 2)


class ActsearchError(Exception):
    """A user error: the CLI prints its message on one line and exits 2.

    Messages name the file (when there is one), the field and what was expected, e.g.
    ``space.yaml: activations.choices[1]: unknown activation 'rleu'; expected one of ...``.
    An error about a function's argument starts with the parameter's name (or names it in
    backticks) and sets ``parameter`` (``trials: expected a positive integer, got 0``): only
    the CLI speaks of flags, and it turns that name into its flag.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    def for_cli(self) -> str:
        """The message with the parameter's name spelt as the CLI's flag: where it leads the
        message, and where the message names it in backticks (``pass `trust_code` ...``)."""
        text = str(self)
        name = self.parameter
        if not name:
            return text
        flag = f"--{name.replace('_', '-')}"
        if text.startswith(name):
            text = flag + text[len(name):]
        return text.replace(f"`{name}`", flag)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages, logs and reports."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class ActsearchWarning(UserWarning):
    """A setting that works but is surely a mistake; the CLI prints it on one line."""
