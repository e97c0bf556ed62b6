"""File formats a user writes, declared once: space files and exported configs (pydantic;
validated with one-line errors; JSON Schema for editors). No torch."""
