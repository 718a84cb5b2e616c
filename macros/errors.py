from __future__ import annotations


class MacroError(ValueError):
    """An expansion was refused: the template or a value cannot be turned into a safe request."""
