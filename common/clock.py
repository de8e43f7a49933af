"""Time is an argument below the interfaces (house rule 5): a service takes `now`, and one
that runs long also takes a `clock` to stamp its progress and its end. Tests pass a fixed
one; views, commands and dispatcher tasks pass django.utils.timezone.now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
