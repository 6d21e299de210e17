"""Timestamps: the one place promptshelf makes, reads, normalises and writes them.

* Every timestamp promptshelf makes is UTC and carries its zone: :func:`utc_now`.
* A naive timestamp (the original implementation wrote ``datetime.now()``, a naive
  local time, and so did earlier promptshelf releases) is taken as UTC.
* Inside a model (:data:`Timestamp`), a naive value read from a store becomes a
  :class:`NaiveUTC`: it compares, sorts and subtracts as the UTC time it is taken
  for, and it is written back exactly as it was read (no offset). A version's bytes,
  and so its SHA-256 (its ETag), never change when it is read and written again.
  An aware value keeps the offset it was written with.
* Timestamps kept outside a version's JSON (database columns, trash file names, backup
  manifests, indexes) are UTC: :func:`as_utc`, :func:`to_text`, :func:`to_ns`,
  :func:`from_ns`, :func:`parse`.
* The original's own formats (its ``.index.json``, written by ``export``) hold naive
  times, as it wrote them: :func:`to_naive_utc`.

Ordering a naive and an aware ``datetime`` raises ``TypeError``; every timestamp that
comes out of this module, or out of a model, is aware, so they always compare.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, cast

from pydantic import AfterValidator, SerializerFunctionWrapHandler, WrapSerializer

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class NaiveUTC(datetime):
    """A timestamp that was written without a zone, taken as UTC (``tzinfo`` is UTC).

    It serializes as it was written, naive, so what was read is written back byte for
    byte. Arithmetic keeps the class; :func:`as_utc` gives a plain UTC ``datetime``.
    """

    # Built from the pickle state of the datetime (its 10 bytes, fold included): 5x faster
    # than passing the fields, and this runs for every timestamp of every version read.

    @classmethod
    def of(cls, naive: datetime) -> NaiveUTC:
        made: NaiveUTC = cast(Any, cls)(_state(naive), UTC)
        return made

    def as_written(self) -> datetime:
        """The naive ``datetime`` it was read from."""
        naive: datetime = cast(Any, datetime)(_state(self))
        return naive


def _state(moment: datetime) -> Any:
    """The pickle state of a ``datetime``: its fields, fold included, in 10 bytes."""
    return cast(Any, moment).__reduce__()[1][0]


def utc_now() -> datetime:
    """Now, in UTC, with its zone: the time of everything promptshelf records."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC as a plain aware ``datetime``; a naive one is taken as UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if type(moment) is not datetime:  # NaiveUTC (or another subclass): a plain datetime
        moment = datetime(
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
            moment.microsecond,
            tzinfo=UTC,
        )
    return moment


def parse(value: str | datetime) -> datetime:
    """An ISO 8601 text (or a ``datetime``) as a UTC ``datetime``; naive is taken as UTC.
    Raises ``ValueError`` for a text that is not a timestamp."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):  # Python 3.11 reads Z, older ones did not
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    return as_utc(value)


def to_text(moment: datetime) -> str:
    """The canonical text of a timestamp outside a version (database columns, manifests):
    UTC, microseconds, ``+00:00``. Texts of this form sort as the times they hold."""
    return as_utc(moment).isoformat(timespec="microseconds")


def to_naive_utc(moment: datetime) -> datetime:
    """``moment`` in UTC without its zone: for the original's formats, which held naive times."""
    return as_utc(moment).replace(tzinfo=None)


def to_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch (exact to the microsecond)."""
    return ((as_utc(moment) - EPOCH) // _MICROSECOND) * 1000


def from_ns(ns: int) -> datetime:
    """A UTC ``datetime`` from nanoseconds since the epoch (exact to the microsecond)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def read(value: datetime) -> datetime:
    """A model's timestamp as read or given: naive becomes :class:`NaiveUTC` (taken as UTC,
    written back as it was); aware is kept with the offset it was written with."""
    if value.tzinfo is None:
        return NaiveUTC.of(value)
    return value


def _write(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    if isinstance(value, NaiveUTC):
        return handler(value.as_written())
    return handler(value)


#: A model field's timestamp: see :func:`read`. Made by promptshelf: ``default_factory=utc_now``.
Timestamp = Annotated[datetime, AfterValidator(read), WrapSerializer(_write, when_used="json")]

#: A timestamp kept in UTC whatever it was given as (a deletion time): naive is taken as UTC.
UtcTimestamp = Annotated[datetime, AfterValidator(as_utc)]
