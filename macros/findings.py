from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result; `start`/`end` are offsets into the template (end exclusive)."""

    severity: Severity
    code: str
    message: str
    start: int
    end: int
