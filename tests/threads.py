"""Helpers for tests where two connections race (threads, each with its own connection)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    """Start `target` in a thread with its own database connection (closed at the end);
    what it raises lands in the returned list for the test to assert on."""
    from django.db import connection

    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as error:  # reported by the test; a thread must not swallow it
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


def wait_for(predicate: Callable[[], bool], seconds: float = 30, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
