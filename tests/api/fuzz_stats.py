"""What the fuzzer did, counted by the tests and printed at the end of the run by `conftest.py`."""

from __future__ import annotations


class FuzzStats:
    """What the fuzzer did, printed at the end of the run (operations covered, cases, failures)."""

    def __init__(self) -> None:
        self.cases: dict[str, int] = {}
        self.stateful_cases = 0
        self.failures: dict[str, int] = {}

    def record_case(self, label: str, *, stateful: bool = False) -> None:
        self.cases[label] = self.cases.get(label, 0) + 1
        self.stateful_cases += stateful

    def record_failure(self, label: str) -> None:
        self.failures[label] = self.failures.get(label, 0) + 1

    def summary(self) -> str:
        return (
            f"schemathesis: {len(self.cases)} operations covered, {sum(self.cases.values())} cases run "
            f"({self.stateful_cases} in linked sequences), {sum(self.failures.values())} failing cases"
            + "".join(f"\n  failing: {label} x{count}" for label, count in sorted(self.failures.items()))
        )


FUZZ_STATS = FuzzStats()
