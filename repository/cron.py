"""Cron expressions and time zones of schedules, parsed by croniter (never by hand).

Five fields (minute hour day month weekday), or six with seconds first (as BullMQ and
Spring write them), or an alias such as ``@hourly``. Fire times are computed in the
schedule's IANA time zone, so ``0 9 * * *`` stays at 09:00 local time across daylight
saving changes (a time the clock skips fires right after the jump, one it repeats fires
once), and are stored in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from .errors import ValidationError

ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                     "@hourly"})
MAX_EXPRESSION_LENGTH = 200
COUNT_CAP = 10_000
"""Missed fire times are counted up to this many (a per-second schedule down for a day)."""
_TICK = timedelta(milliseconds=1)


@dataclass(frozen=True)
class CronSpec:
    expression: str
    timezone: str

    @property
    def seconds(self) -> bool:
        return len(self.expression.split()) == 6

    def _iterator(self, start: datetime) -> croniter:
        local = start.astimezone(ZoneInfo(self.timezone))
        return croniter(self.expression, local, second_at_beginning=self.seconds)

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after ``when``, in UTC."""
        return _utc(self._iterator(when).get_next(datetime))

    def upcoming(self, when: datetime, count: int) -> list[datetime]:
        iterator = self._iterator(when)
        return [_utc(iterator.get_next(datetime)) for _ in range(count)]

    def recent(self, since: datetime, until: datetime, count: int) -> list[datetime]:
        """The newest ``count`` fire times in ``[since, until]``, oldest first."""
        iterator = self._iterator(until + _TICK)
        found: list[datetime] = []
        while len(found) < count:
            tick = _utc(iterator.get_prev(datetime))
            if tick < since:
                break
            found.append(tick)
        found.reverse()
        return found

    def count_between(self, since: datetime, before: datetime) -> int:
        """Fire times in ``[since, before)``, counted up to ``COUNT_CAP``."""
        iterator = self._iterator(since - _TICK)
        count = 0
        while count < COUNT_CAP and _utc(iterator.get_next(datetime)) < before:
            count += 1
        return count


def _utc(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def cron_spec(expression: str, timezone: str) -> CronSpec:
    """A checked expression and zone; what is wrong is a VALIDATION_ERROR naming it."""
    zone = check_timezone(timezone)
    text = " ".join((expression or "").split())
    if not text or len(text) > MAX_EXPRESSION_LENGTH:
        raise ValidationError("cron", f"must be a cron expression of at most "
                              f"{MAX_EXPRESSION_LENGTH} characters")
    fields = text.split()
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValidationError("cron", f"unknown alias {text!r}; use one of "
                                  f"{', '.join(sorted(ALIASES))}")
        text = text.lower()
    elif len(fields) not in (5, 6):
        raise ValidationError("cron", "needs 5 fields (minute hour day month weekday) or 6 "
                              f"(seconds first), got {len(fields)}")
    spec = CronSpec(text, zone.key)
    try:
        spec.next_after(datetime.now(UTC))
    except CroniterBadDateError:
        raise ValidationError("cron", f"{text!r} never fires") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        raise ValidationError("cron", f"{text!r} is not a valid cron expression: {exc}"
                              ) from None
    return spec


def check_timezone(name: str) -> ZoneInfo:
    if not name or len(name) > 100 or name.startswith(("/", ".")) or ".." in name:
        raise ValidationError("timezone", "must be an IANA time zone such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"{name!r} is not an IANA time zone such as "
                              "Europe/Berlin or UTC") from None
