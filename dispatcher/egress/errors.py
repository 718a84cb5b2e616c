"""One error type for everything that can go wrong with a send, saying whether trying again can help."""

from __future__ import annotations

from dispatcher.models import ErrorClass


class DeliveryError(Exception):
    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        permanent: bool,
        retry_after_s: float | None = None,
        pause_reason: str | None = None,
        timed_out: bool = False,
    ) -> None:
        """`timed_out`: nothing came back in time (a `timeout`, or a DNS lookup that did not end): the host's
        circuit counts it as a timeout."""
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.permanent = permanent
        # The receiver's Retry-After, when it sent one (a hint, bounded by the retry policy).
        self.retry_after_s = retry_after_s
        # Set when the receiver told us to stop for good (410): the postback is paused with this reason.
        self.pause_reason = pause_reason
        self.timed_out = timed_out or error_class is ErrorClass.TIMEOUT

    @property
    def throttled(self) -> bool:
        """A timeout or a 429: the receiver is overloaded, so the next try waits longer."""
        return self.error_class is ErrorClass.TIMEOUT or (
            self.error_class is ErrorClass.HTTP_STATUS and self.message.startswith("429")
        )
