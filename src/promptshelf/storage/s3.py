"""``S3Storage``: every version as one object in an S3 bucket, no lock service.

Layout under the store's prefix (``s3://bucket/prefix``)::

    <prompt_id>/<version>.json                 a version: the same bytes as a version file
                                                (canonical JSON + its "sha256" key)
    .labels/<prompt_id>.json                   where the labels point (see s3labels)
    .events/<prompt_id>/<seq>.json             the label history, one object per event
    .trash/<prompt_id>/<version>/<when>.json   deleted versions, by deletion time
    .quarantine/<prompt_id>/<version>-<when>.json   damaged versions moved aside by repair
    .documents/<namespace>/<key>.json          documents: {"revision": n, "data": {...}}

Prompt ids never start with a dot, so the store's own folders cannot collide
with a prompt. No key is ever both an object and the prefix of other keys
(SeaweedFS keeps keys as file paths).

How the invariants hold without locks:

* create-once: a save is a put with ``If-None-Match: *``; of two writers of one
  version exactly one succeeds, the other gets ``VersionConflictError`` and
  ``VersionManager`` retries with the next number;
* labels move by compare-and-swap on one object per prompt (``If-Match``);
* a delete copies the version into the trash, then deletes it with
  ``If-Match`` on the ETag it read, so a version saved again in between is
  never deleted by mistake;
* reads are linearizable: S3 (and SeaweedFS) give read-after-write on objects
  and listings; the in-process cache is revalidated on every read
  (``If-None-Match`` -> 304) or against the ETags a listing returned.

Known window: a label set on a version that is deleted at the same moment
can be left pointing at nothing; ``verify`` reports it and ``repair``
removes the label (recording it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from .. import semver
from ..cache import LRUCache
from ..errors import (
    ConfigurationError,
    CorruptStoreError,
    LabelInUseError,
    OptimizerError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from ..ids import validate_prompt_id
from ..models import LabelEvent, PromptVersion, TrashEntry
from ..progress import Tally
from ..timestamps import as_utc, utc_now
from . import integrity
from .base import (
    TrashedVersion,
    VersionStorage,
    checked_version,
    document_conflict,
    missing_version,
    not_in_trash,
    trash_conflict,
)
from .codec import MAX_VERSION_BYTES, decode_version, encode_version
from .documents import MAX_DOCUMENT_BYTES
from .labelevents import events_to_import, label_moved, label_seq
from .s3client import Bucket, NotModified, PreconditionFailed, make_client
from .s3labels import EVENTS_DIR, LABELS_DIR, LabelLog, LabelState, new_event
from .verify import Action, Problem, RepairReport, VerifyReport

TRASH_DIR = ".trash"
DOCUMENTS_DIR = ".documents"
QUARANTINE_DIR = ".quarantine"
STAMP = "%Y%m%dT%H%M%S.%f"  # in UTC (a key of an older store, naive, is read as UTC)


def _stamp(moment: datetime) -> str:
    """A trash or quarantine key's time: UTC, to the microsecond."""
    return as_utc(moment).strftime(STAMP)


#: A stored version is its canonical bytes plus the checksum key (under 100 bytes).
MAX_OBJECT_BYTES = MAX_VERSION_BYTES + 100


class S3Storage(VersionStorage):
    """A store in ``bucket`` under ``prefix``; see the module docstring for the layout."""

    backend_name = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        cache_size: int = 1000,
        max_workers: int = 32,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        max_attempts: int = 4,
        create: bool = True,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ConfigurationError(f"not a bucket name: {bucket!r}", context={"bucket": bucket})
        if endpoint_url is not None:
            parts = urlsplit(endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(
                    "endpoint_url must be an http:// or https:// URL",
                    context={"option": "endpoint_url"},
                )
            if parts.username or parts.password:
                raise ConfigurationError(
                    "credentials do not go in endpoint_url: use the AWS environment variables "
                    "or ~/.aws",
                    context={"option": "endpoint_url"},
                )
        if max_workers < 1 or max_attempts < 1 or cache_size < 0:
            raise ConfigurationError("max_workers and max_attempts must be >= 1, cache_size >= 0")
        parts_of_prefix = [p for p in prefix.split("/") if p]
        self.prefix = "/".join(parts_of_prefix)
        self.root = self.prefix + "/" if self.prefix else ""
        self.endpoint = endpoint_url or "aws"
        query = "&".join(
            f"{k}={v}" for k, v in (("endpoint_url", endpoint_url), ("region", region)) if v
        )
        #: The URL that opens this store again (it never holds credentials).
        self.url = f"s3://{bucket}/{self.prefix}" + (f"?{query}" if query else "")
        self.max_workers = max_workers
        client = make_client(
            endpoint_url,
            region,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
            pool=max_workers + 4,
        )
        self.bucket = Bucket(client, bucket, self.endpoint)
        self._cache: LRUCache[tuple[str, bytes]] = LRUCache(cache_size)
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="promptshelf-s3")
        self._pool_lock = threading.Lock()
        self.labels = LabelLog(self.bucket, self.root, self._pool)
        try:
            self.bucket.head_bucket()
        except StorageError as exc:
            if exc.error_code != "STORE-NOT-FOUND" or not create:
                self._pool.shutdown(wait=False)
                raise
            self.bucket.create_bucket()

    # -- keys ----------------------------------------------------------------------------

    def _key(self, prompt_id: str, version: str) -> str:
        return f"{self.root}{prompt_id}/{version}.json"

    def _trash_prefix(self, prompt_id: str | None = None, version: str | None = None) -> str:
        key = f"{self.root}{TRASH_DIR}/"
        if prompt_id is not None:
            key += f"{prompt_id}/"
            if version is not None:
                key += f"{version}/"
        return key

    def _parse_trash_key(self, key: str) -> TrashEntry | None:
        parts = key[len(self._trash_prefix()) :].split("/")
        if len(parts) != 3 or not parts[2].endswith(".json"):
            return None
        try:
            deleted_at = as_utc(datetime.strptime(parts[2][:-5], STAMP))  # UTC
            semver.parse(parts[1])
            validate_prompt_id(parts[0])
        except (ValueError, OptimizerError):
            return None
        return TrashEntry(prompt_id=parts[0], version=parts[1], deleted_at=deleted_at)

    # -- versions ------------------------------------------------------------------------

    def _encode(self, version: PromptVersion) -> bytes:
        return integrity.seal(encode_version(version))

    def _save(self, version: PromptVersion) -> None:
        self._put_new(version.prompt_id, version.version, self._encode(version))

    def _put_new(self, prompt_id: str, version: str, data: bytes) -> None:
        key = self._key(prompt_id, version)
        try:
            self.bucket.put(key, data, if_none_match=True)
        except PreconditionFailed:
            raise VersionConflictError(prompt_id, version) from None

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions with up to ``max_workers`` puts in flight.

        Every version is validated and serialized before anything is written,
        so a bad version, or the same version twice in the batch, raises and
        writes nothing. Each put is create-only and atomic: a version is
        either wholly there or absent, even if the writer is killed midway.
        A version that exists already does not stop the others: every other
        one is saved, then the first error is raised.
        """
        self._check_open()
        versions = self._refuse_retired_all(versions)
        batch: list[tuple[str, str, bytes]] = []
        seen: set[tuple[str, str]] = set()
        for version in versions:
            checked = checked_version(version)
            key = (checked.prompt_id, checked.version)
            if key in seen:
                raise VersionConflictError(*key, context={"reason": "twice in one batch"})
            seen.add(key)
            batch.append((checked.prompt_id, checked.version, self._encode(checked)))

        def put(item: tuple[str, str, bytes]) -> BaseException | None:
            try:
                self._put_new(*item)
            except OptimizerError as exc:
                return exc
            return None

        errors = [e for e in self._pool.map(put, batch) if e is not None]
        if errors:
            raise errors[0]
        return len(batch)

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        canonical = self._read(self._key(prompt_id, version), revalidate=True)
        if canonical is None:
            return None
        where = self.bucket.where(self._key(prompt_id, version))
        return decode_version(canonical, prompt_id, version, where)

    def _read(self, key: str, *, revalidate: bool, etag: str | None = None) -> bytes | None:
        """The canonical bytes at ``key`` (checksum checked), through the cache.

        With an ``etag`` (from a listing) a cached copy with that ETag is used
        as is; otherwise a cached copy is revalidated (304) before use.
        """
        cached = self._cache.get(key) if revalidate else None
        if cached is not None and etag is not None and cached[0] == etag:
            return cached[1]
        try:
            stored = self.bucket.get(
                key, if_none_match=cached[0] if cached else None, limit=MAX_OBJECT_BYTES
            )
        except NotModified:
            assert cached is not None
            return cached[1]
        if cached is not None:
            self._cache.count_miss()
        if stored is None:
            self._cache.discard(key)
            return None
        canonical, _ = integrity.unseal(stored.data, self.bucket.where(key))
        self._cache.put(key, (stored.etag, canonical))
        return canonical

    def _listing(self, prompt_id: str) -> list[tuple[str, str]]:
        """``(version, etag)`` of every version object of the prompt, oldest first."""
        prefix = f"{self.root}{prompt_id}/"
        found: list[tuple[str, str]] = []
        for key, etag in self.bucket.objects(prefix):
            name = key[len(prefix) :]
            if "/" in name or not name.endswith(".json"):
                continue
            try:
                semver.parse(name[:-5])
            except OptimizerError:
                continue  # not a version object (verify reports it)
            found.append((name[:-5], etag))
        found.sort(key=lambda item: semver.parse(item[0]))
        return found

    def _version_numbers(self, prompt_id: str) -> list[str]:
        return [number for number, _ in self._listing(prompt_id)]

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        def load(item: tuple[str, str]) -> PromptVersion | None:
            key = self._key(prompt_id, item[0])
            data = self._read(key, revalidate=True, etag=item[1])
            if data is None:
                return None
            return decode_version(data, prompt_id, item[0], self.bucket.where(key))

        found = self._pool.map(load, self._listing(prompt_id))
        return [v for v in found if v is not None]

    def _prompts(self) -> list[str]:
        # An emptied "folder" can outlive its last object (SeaweedFS keeps directories):
        # confirm each candidate holds an object.
        candidates = [c for c in self.bucket.children(self.root) if c and not c.startswith(".")]
        held = self._pool.map(lambda c: self.bucket.any_key(f"{self.root}{c}/"), candidates)
        return sorted(c for c, ok in zip(candidates, held, strict=True) if ok)

    # -- deleting and the trash --------------------------------------------------------------

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        key = self._key(prompt_id, version)
        stored = self.bucket.get(key)
        if stored is None:
            return False

        def removals(state: LabelState) -> list[LabelEvent]:
            on_it = sorted(n for n, v in state.labels.items() if v == version)
            if on_it and not force:
                raise LabelInUseError(
                    f"{prompt_id} {version} is labelled {', '.join(on_it)}; move the label(s) "
                    "first or delete with force=True",
                    context={"prompt_id": prompt_id, "version": version, "labels": on_it},
                )
            events: list[LabelEvent] = []
            labels = dict(state.labels)
            for name in on_it:
                event = new_event(
                    state,
                    prompt_id,
                    name,
                    None,
                    "promptshelf",
                    f"version {version} deleted",
                    offset=len(events),
                    labels=labels,
                )
                if event is not None:
                    events.append(event)
                    labels.pop(name, None)
            return events

        self.labels.change(prompt_id, removals)
        trash_key = self._put_trash(prompt_id, version, stored.data, utc_now())
        try:
            self.bucket.delete(key, if_match=stored.etag)
        except PreconditionFailed:  # deleted (or deleted and saved again) meanwhile
            self.bucket.delete(trash_key)
            return False
        self._cache.discard(key)
        return True

    def _put_trash(self, prompt_id: str, version: str, data: bytes, when: datetime) -> str:
        """Put a trash copy create-only; a taken timestamp moves on by a microsecond."""
        while True:
            key = f"{self._trash_prefix(prompt_id, version)}{_stamp(when)}.json"
            try:
                self.bucket.put(key, data, if_none_match=True)
                return key
            except PreconditionFailed:
                when += timedelta(microseconds=1)

    def _trash_keys(self, prompt_id: str | None) -> list[tuple[str, TrashEntry]]:
        found = []
        for key in self.bucket.keys(self._trash_prefix(prompt_id)):
            entry = self._parse_trash_key(key)
            if entry is not None:
                found.append((key, entry))
        return found

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        return [entry for _, entry in self._trash_keys(prompt_id)]

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        def load(item: tuple[str, TrashEntry]) -> TrashedVersion | None:
            key, entry = item
            stored = self.bucket.get(key, limit=MAX_OBJECT_BYTES)
            if stored is None:
                return None  # restored or emptied meanwhile
            where = self.bucket.where(key)
            canonical, _ = integrity.unseal(stored.data, where)
            return TrashedVersion(
                entry, decode_version(canonical, entry.prompt_id, entry.version, where)
            )

        found = self._pool.map(load, self._trash_keys(prompt_id))
        return [t for t in found if t is not None]

    def _import_trashed(self, item: TrashedVersion) -> bool:
        entry = item.entry
        stamp = _stamp(entry.deleted_at)
        key = f"{self._trash_prefix(entry.prompt_id, entry.version)}{stamp}.json"
        if self._parse_trash_key(key) != entry:  # a time this layout cannot name exactly
            raise ValidationError(
                f"deletion time {entry.deleted_at.isoformat()} cannot be kept verbatim "
                "(a trash key holds microseconds)",
                context={"prompt_id": entry.prompt_id, "version": entry.version},
            )
        canonical = encode_version(item.version)
        try:
            self.bucket.put(key, integrity.seal(canonical), if_none_match=True)
            return True
        except PreconditionFailed:
            pass
        held = self.bucket.get(key, limit=MAX_OBJECT_BYTES)
        if held is not None and integrity.unseal(held.data, self.bucket.where(key))[0] == canonical:
            return False
        raise trash_conflict(entry)

    def _restore(self, prompt_id: str, version: str) -> None:
        keys = sorted(self.bucket.keys(self._trash_prefix(prompt_id, version)))
        for key in reversed(keys):  # the newest deletion first
            stored = self.bucket.get(key)
            if stored is None:
                continue  # restored or emptied by someone else meanwhile
            integrity.unseal(stored.data, self.bucket.where(key))  # never restore damage
            self._put_new(prompt_id, version, stored.data)
            self.bucket.delete(key)
            return
        raise not_in_trash(prompt_id, version)

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        if trashed_at is not None:
            stamp = _stamp(trashed_at)
            key = f"{self._trash_prefix(prompt_id, version)}{stamp}.json"
        else:
            key = self._key(prompt_id, version)
        if not self.bucket.exists(key):
            return False
        if trashed_at is None:
            state, _ = self.labels.read(prompt_id)
            on_it = sorted(n for n, v in state.labels.items() if v == version)
            if on_it:
                raise LabelInUseError(
                    f"{prompt_id} {version} is labelled {', '.join(on_it)}; move the label(s) "
                    "first",
                    context={"prompt_id": prompt_id, "version": version, "labels": on_it},
                )
        self.bucket.delete(key)
        self._cache.discard(key)
        return True

    def _empty_trash(self, cutoff: datetime | None) -> int:
        doomed = [
            key
            for key, entry in self._trash_keys(None)
            if cutoff is None or entry.deleted_at < cutoff
        ]
        self.bucket.delete_many(doomed)
        return len(doomed)

    # -- labels ------------------------------------------------------------------------------

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
        *,
        expected_seq: int | None = None,
    ) -> LabelEvent | None:
        if version is not None and not self.bucket.exists(self._key(prompt_id, version)):
            raise missing_version(prompt_id, version)

        def compute(state: LabelState) -> list[LabelEvent]:
            if expected_seq is not None:  # checked against the state this CAS replaces
                seq = 0
                if label in state.labels:
                    seq = label_seq(self.labels.events_of(prompt_id, state), label)
                if seq != expected_seq:
                    raise label_moved(prompt_id, label, expected_seq, seq)
            event = new_event(state, prompt_id, label, version, actor, reason)
            return [] if event is None else [event]

        events = self.labels.change(prompt_id, compute)
        return events[0] if events else None

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        def compute(state: LabelState) -> list[LabelEvent]:
            existing = self.labels.events_of(prompt_id, state)
            return events_to_import(
                existing, events, lambda v: self.bucket.exists(self._key(prompt_id, v))
            )

        return len(self.labels.change(prompt_id, compute))

    def _history_prompts(self) -> list[str]:
        return self.labels.prompts()

    def _labels(self, prompt_id: str) -> dict[str, str]:
        state, _ = self.labels.read(prompt_id)
        return dict(state.labels)

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        return self.labels.events(prompt_id)

    # -- documents (see .documents): one object each, revision in the body ------------------

    def _doc_key(self, namespace: str, key: str | None = None) -> str:
        base = f"{self.root}{DOCUMENTS_DIR}/{namespace}/"
        return base if key is None else f"{base}{key}.json"

    def _doc_read(self, key: str) -> tuple[bytes, int, str] | None:
        """``(canonical bytes, revision, etag)`` of a document object, or None."""
        stored = self.bucket.get(key, limit=MAX_DOCUMENT_BYTES + 100)
        if stored is None:
            return None
        try:
            envelope = json.loads(stored.data)
            revision = envelope["revision"]
            raw = json.dumps(envelope["data"], sort_keys=True, ensure_ascii=False)
        except (ValueError, KeyError, TypeError):
            raise CorruptStoreError(
                f"document {self.bucket.where(key)} is damaged",
                context={"path": self.bucket.where(key)},
            ) from None
        if type(revision) is not int:
            raise CorruptStoreError(
                f"document {self.bucket.where(key)} has no revision",
                context={"path": self.bucket.where(key)},
            )
        return raw.encode("utf-8"), revision, stored.etag

    @staticmethod
    def _doc_body(data: bytes, revision: int) -> bytes:
        # The revision is in the body, so the ETag (an MD5 of it) changes on every write:
        # a document written A -> B -> A never gets an old ETag back (no ABA).
        return b'{"revision": ' + str(revision).encode() + b', "data": ' + data + b"}"

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        found = self._doc_read(self._doc_key(namespace, key))
        return None if found is None else (found[0], found[1])

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        prefix = self._doc_key(namespace)
        keys = [
            k
            for k in self.bucket.keys(prefix)
            if k.endswith(".json") and "/" not in k[len(prefix) :]
        ]
        found = self._pool.map(self._doc_read, keys)
        return {
            k[len(prefix) : -5]: (doc[0], doc[1])
            for k, doc in zip(keys, found, strict=True)
            if doc is not None
        }

    def _doc_namespaces(self) -> list[str]:
        base = f"{self.root}{DOCUMENTS_DIR}/"
        return [n for n in self.bucket.children(base) if self.bucket.any_key(f"{base}{n}/")]

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        object_key = self._doc_key(namespace, key)
        try:
            if expected is None:
                self.bucket.put(object_key, self._doc_body(data, 1), if_none_match=True)
                return 1
            current = self._doc_read(object_key)
            if current is None or current[1] != expected:
                raise document_conflict(namespace, key, expected)
            self.bucket.put(object_key, self._doc_body(data, expected + 1), if_match=current[2])
            return expected + 1
        except PreconditionFailed:
            raise document_conflict(namespace, key, expected) from None

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        object_key = self._doc_key(namespace, key)
        current = self._doc_read(object_key)
        if current is None:
            return False
        if expected is not None and current[1] != expected:
            raise document_conflict(namespace, key, expected)
        try:
            self.bucket.delete(object_key, if_match=current[2])
        except PreconditionFailed:
            if expected is not None:
                raise document_conflict(namespace, key, expected) from None
            return self._doc_delete(namespace, key, None)  # replaced meanwhile: delete that
        return True

    # -- the whole store -------------------------------------------------------------------

    def _clear(self) -> None:
        # Versions, labels, their history and the trash go; every other folder of ours
        # starts with a dot and stays (documents are not versions; a backup's manifests
        # and the quarantine are not the store's to clear), as on the filesystem.
        gone = tuple(f"{self.root}{d}/" for d in (LABELS_DIR, EVENTS_DIR, TRASH_DIR))

        def cleared(key: str) -> bool:
            return not key[len(self.root) :].startswith(".") or key.startswith(gone)

        self.bucket.delete_many([k for k in self.bucket.keys(self.root) if cleared(k)])
        self._cache.clear()

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        prompts: set[str] = set()
        total = 0
        for prompt_id, _ in self._version_keys():
            prompts.add(prompt_id)
            total += 1
        return {
            "backend": self.backend_name,
            "total_prompts": len(prompts),
            "total_versions": total,
            "bucket": self.bucket.name,
            "prefix": self.prefix,
            "endpoint": self.endpoint,
            "cache_stats": self._cache.stats(),
        }

    def _version_keys(self) -> Iterable[tuple[str, str]]:
        """``(prompt_id, version)`` of every version object, in one flat listing."""
        for key in self.bucket.keys(self.root):
            rest = key[len(self.root) :]
            if rest.startswith("."):
                continue
            prompt_id, _, name = rest.partition("/")
            if "/" in name or not name.endswith(".json"):
                continue
            try:
                semver.parse(name[:-5])
            except OptimizerError:
                continue
            yield prompt_id, name[:-5]

    def _verify_read(self, prompt_id: str, version: str) -> None:
        key = self._key(prompt_id, version)
        canonical = self._read(key, revalidate=False)  # past the cache: the bytes stored now
        if canonical is not None:
            decode_version(canonical, prompt_id, version, self.bucket.where(key))

    def _verify_more(self, report: VerifyReport) -> None:
        for prompt_id in self.labels.prompts():
            try:
                state, gaps = self.labels.event_gaps(prompt_id)
            except OptimizerError as exc:
                report.problems.append(Problem(exc.error_code, prompt_id, exc.message))
                continue
            for seq in gaps:
                report.problems.append(
                    Problem(
                        "S3-EVENT-MISSING",
                        self.bucket.where(self.labels.event_key(prompt_id, seq)),
                        f"label event {seq} of {prompt_id!r} has no object",
                    )
                )

    def _repair(self, report: RepairReport, tally: Tally) -> None:
        for prompt_id in self._prompts():
            for number in self._version_numbers(prompt_id):
                tally.add()
                try:
                    self._verify_read(prompt_id, number)
                except OptimizerError as exc:
                    if exc.error_code not in ("FS-LOAD-001", "PS-CHECKSUM-001"):
                        raise
                    self._quarantine(prompt_id, number)
                    report.actions.append(
                        Action(exc.error_code, f"{prompt_id}@{number}", "moved to quarantine")
                    )
        for prompt_id in self.labels.prompts():
            state, _ = self.labels.read(prompt_id)
            self.labels.materialize(prompt_id, state.pending)

    def _quarantine(self, prompt_id: str, version: str) -> None:
        key = self._key(prompt_id, version)
        stored = self.bucket.get(key)
        if stored is None:
            return
        stamp = _stamp(utc_now())
        aside = f"{self.root}{QUARANTINE_DIR}/{prompt_id}/{version}-{stamp}.json"
        self.bucket.put(aside, stored.data)
        try:
            self.bucket.delete(key, if_match=stored.etag)
        except PreconditionFailed:
            pass  # replaced meanwhile: the new object is not ours to move
        self._cache.discard(key)

    def close(self) -> None:
        if not self.closed:
            self._pool.shutdown(wait=True)
        super().close()

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket.name}/{self.prefix}, endpoint={self.endpoint})"


__all__ = ["EVENTS_DIR", "LABELS_DIR", "QUARANTINE_DIR", "TRASH_DIR", "S3Storage"]
