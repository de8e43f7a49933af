"""Local time for `when`: a customer's `timezone` trait when it names a known IANA zone,
otherwise UTC (shared/specs/segment-rules.md, Additions).

"Known" is exact and case-sensitive: a name of the IANA tz database as this machine's
tzdata lists it (`zoneinfo.available_timezones()`, backward links included). The SQL
compiler passes the same set to PostgreSQL, which reads the same tz database files, so
the reference evaluator and the compiled statement agree on what is known.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timezone
from functools import lru_cache

# TRICKY: PostgreSQL's `AT TIME ZONE` looks a name up in its abbreviation table before
# the tz database, so `'CET'` is a fixed +01:00 there although the IANA zone CET keeps
# summer time. The IANA names that collide with an abbreviation and whose rules are not a
# fixed offset are read through the zone tzdata ≥ 2024b links them to (same rules);
# EST, MST and HST are fixed offsets in both (America/Panama, America/Phoenix and
# Pacific/Honolulu have kept them for decades), and GMT, UCT, UTC, Zulu are all +00:00.
POSTGRES_NAME = {"CET": "Europe/Brussels", "MET": "Europe/Brussels", "EET": "Europe/Athens", "WET": "Europe/Lisbon",
                 "EST": "America/Panama", "MST": "America/Phoenix", "HST": "Pacific/Honolulu"}


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_time(moment: datetime, zone_name) -> datetime:
    """`moment` on the wall clock of the customer's zone (UTC when the name is not known)."""
    if isinstance(zone_name, str) and zone_name in known_zones():
        return moment.astimezone(_zone(zone_name))
    return moment.astimezone(timezone.utc)
