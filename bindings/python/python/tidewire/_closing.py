"""How a connection ends: the part the blocking and the asyncio connection classes share.

The context holds the close frame that answers the peer (``hold_close_replies``) until the
application has consumed the messages that arrived before the peer's close or its protocol
error, so that its answers to them still go first (RFC 6455 section 7.1.1 ordering).
"""

from __future__ import annotations

from typing import Optional

from ._queue import MessageQueue
from ._tidewire import Context
from .exceptions import ConnectionClosed, InvalidState, closed_exception


class ClosingState:
    """Mixin: what a connection knows about its end, and when to release the held close."""

    _ctx: Context
    _messages: MessageQueue
    id: int
    close_code: Optional[int]
    close_reason: Optional[str]

    def _init_closing(self) -> None:
        self._error: Optional[BaseException] = None
        self._clean = False
        # The close code came from the peer (not one we failed the connection with).
        self._remote_close = False
        # A message was handed to the application and it has not come back to `recv` since:
        # it may still answer, so a held close frame waits.
        self._unanswered = False
        self._close_owed = False

    def _wake_engine(self) -> None:
        """Has the engine write what was just queued (each class knows its engine)."""
        raise NotImplementedError

    def _close_held(self) -> None:
        """The peer closed (or broke the protocol): answer now, unless messages before it
        may still be answered."""
        self._close_owed = True
        if not self._unanswered and not self._messages:
            self._release_close_reply()

    def _back_for_more(self) -> None:
        """`recv` found nothing queued: everything received so far was answered."""
        self._unanswered = False
        if self._close_owed:
            self._release_close_reply()

    def _release_close_reply(self) -> None:
        self._close_owed = False
        try:
            if self._ctx.release_close_reply(self.id):
                self._wake_engine()
        except InvalidState:
            pass  # the connection is already over

    def _closed_exception(self) -> ConnectionClosed:
        code = 1006 if self.close_code is None else self.close_code
        exc = closed_exception(code, self.close_reason or "", self._clean, self._remote_close)
        if self._error is not None and exc.__cause__ is None:
            exc.__cause__ = self._error
        return exc
