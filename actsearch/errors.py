"""The one exception type for mistakes a user can make (bad files, bad URLs, bad names)."""

from __future__ import annotations


class ActsearchError(Exception):
    """A user error: the CLI prints its message on one line and exits 2.

    Messages name the file (when there is one), the field and what was expected, e.g.
    ``space.yaml: activations.choices[1]: unknown activation 'rleu'; expected one of ...``.
    """
