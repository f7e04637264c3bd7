"""Messages a consumer holds, and how an actor settles one in its own last write."""
from __future__ import annotations

from typing import Any

from dramatiq import Message, MessageProxy


class HeldMessage(MessageProxy):
    """A message a consumer holds, with what acknowledging it takes."""

    def __init__(self, message: Message[Any], raw: bytes, held_key: str,
                 fetched_with: bytes | None = None, fetched_at: float = 0.0) -> None:
        super().__init__(message)
        # The fields Dramatiq reads for every message, on the proxy itself:
        # MessageProxy would look each one up through __getattr__.
        self.queue_name = message.queue_name
        self.actor_name = message.actor_name
        self.options = message.options
        self.message_id = message.message_id
        self.message_timestamp = message.message_timestamp
        self.raw = raw
        self.held_key = held_key
        #: The value of the queue's ``fetch_with`` key when this message was taken.
        self.fetched_with = fetched_with
        #: When it was taken (``time.monotonic()``): a message may wait a while
        #: in the process before a thread runs it.
        self.fetched_at = fetched_at
        #: Set once the message has left the held list (see ``held_message``).
        self.acknowledged = False
        #: Set by an actor that could not finish for want of Redis: instead of
        #: being acknowledged, the message goes back to the head of its queue
        #: (once Redis answers again; Dramatiq retries until it does).
        self.send_again = False


def held_message(message: MessageProxy | None) -> HeldMessage | None:
    """``message`` if its actor may acknowledge it inside its own last write.

    The actor removes ``raw`` from ``held_key`` in the same script that
    records its outcome and sets ``acknowledged``; the consumer then skips
    its own ``LREM``, which saves a round trip per message.
    """
    if isinstance(message, HeldMessage) and not message.acknowledged:
        return message
    return None


def give_back(message: MessageProxy | None) -> bool:
    """Have ``message`` go back to its queue instead of being acknowledged.

    For an actor that could not finish for want of Redis: the consumer puts
    the message back at its queue's head once Redis answers. Returns
    ``False`` if ``message`` is not one this broker holds (the actor was
    called directly), and the caller should raise instead.
    """
    held = held_message(message)
    if held is None:
        return False
    held.send_again = True
    return True
