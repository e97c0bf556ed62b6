"""File formats a user writes: space files (validated, one-line errors). No torch."""
