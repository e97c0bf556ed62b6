"""The one exception type for mistakes a user can make, and keeping secrets out of messages."""

from __future__ import annotations

import re

EXIT_INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C or SIGTERM (128 + 2)


class ActsearchError(Exception):
    """A user error: the CLI prints its message on one line and exits 2.

    Messages name the file (when there is one), the field and what was expected, e.g.
    ``space.yaml: activations.choices[1]: unknown activation 'rleu'; expected one of ...``.
    """


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages, logs and reports."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
