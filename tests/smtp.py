"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, recording the messages it accepts.

``RecordingHandler(fail_first=2)`` answers 451 to the first two messages, ``fail_always=True`` to all of them, and
``refuse={"x@example.com"}`` refuses those recipients with 550.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

TEMPORARY_FAILURE = "451 4.3.0 Try again later"


class RecordingHandler:
    def __init__(self, *, fail_first: int = 0, fail_always: bool = False, refuse: set[str] | None = None):
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.refuse = refuse or set()
        self.attempts = 0  # DATA commands received, accepted or not
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.attempts += 1
            if self.fail_always or self.attempts <= self.fail_first:
                return TEMPORARY_FAILURE
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [message["Message-ID"] for message in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server(handler: RecordingHandler):
    """Run an SMTP server with ``handler``; yields its port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
