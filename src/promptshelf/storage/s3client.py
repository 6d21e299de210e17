"""The one door to S3 for :class:`S3Storage`: the boto3 client, its limits, and its errors.

Every request goes through :class:`Bucket`, which translates botocore's
exceptions once into promptshelf's coded errors, so a backend method never
sees a raw ``ClientError``. What each failure becomes:

* a failed precondition (412; also 404 on ``If-Match`` of a missing key, and
  AWS's 409 ``ConditionalRequestConflict``) -> :class:`PreconditionFailed`,
  which the backend turns into "lost the race" (a conflict, or a retry);
* 304 on a revalidating read -> :class:`NotModified`; a missing key -> None;
* throttling (503 SlowDown) and 5xx -> retried by botocore's "standard"
  retry mode (exponential backoff with jitter, ``max_attempts`` in all),
  then ``S3-001``;
* refused or timed-out connections -> ``S3-CONN-001`` within seconds
  (``connect_timeout`` x ``max_attempts``);
* bad or missing credentials -> ``S3-AUTH-001``.

Credentials come only from boto3's usual chain (environment variables, the
shared credentials and config files, an instance role); they never appear in
a URL, an error message or a log line: contexts name the endpoint, bucket and
key only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import (
    ObjectStoreAuthError,
    ObjectStoreError,
    ObjectStoreUnreachableError,
    StoreNotFoundError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

#: Keys per DeleteObjects request (the S3 limit).
DELETE_BATCH = 1000


_AUTH_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


class PreconditionFailed(Exception):
    """A conditional write or delete lost: the object exists, or changed, or is gone."""


class NotModified(Exception):
    """A revalidating read found the cached ETag current (HTTP 304)."""


@dataclass(frozen=True)
class Stored:
    """One object read whole: its bytes and its ETag."""

    data: bytes
    etag: str


def make_client(
    endpoint_url: str | None,
    region: str | None,
    *,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    pool: int,
) -> S3Client:
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=pool,
        # Path-style addressing: a local or self-hosted endpoint has no per-bucket DNS names.
        s3={"addressing_style": "path"} if endpoint_url else None,
        # Compute no checksums boto3 would add by default: SeaweedFS and older gateways
        # reject some of them, and every version carries its own SHA-256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _SESSION_LOCK:  # a boto3 session is not thread-safe; its clients are
        client: S3Client = _session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
    return client


_SESSION_LOCK = threading.Lock()
_LOADERS: dict[int, Any] = {}


def _session() -> boto3.session.Session:
    """A fresh session (so credentials are resolved from the environment and files as they
    are now) sharing one loader per process: the service model is parsed once, not for
    every store opened (about 0.2 s each)."""
    pid = os.getpid()
    if pid not in _LOADERS:
        _LOADERS.clear()  # a forked child builds its own
        _LOADERS[pid] = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADERS[pid])
    return boto3.session.Session(botocore_session=core)


class Bucket:
    """A bucket (and an endpoint) through one client, every error translated."""

    def __init__(self, client: S3Client, bucket: str, endpoint: str) -> None:
        self.client = client
        self.name = bucket
        self.endpoint = endpoint

    def where(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    # -- the translation ---------------------------------------------------------------

    def call(self, action: str, key: str | None, fn: Callable[[], T]) -> T:
        context: dict[str, Any] = {"endpoint": self.endpoint, "bucket": self.name, "action": action}
        if key is not None:
            context["key"] = key
        try:
            return fn()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if status == 304 or code in ("304", "NotModified"):
                raise NotModified() from None
            if status == 412 or code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed() from None
            if code == "NoSuchBucket" or (action == "open" and status == 404):
                raise StoreNotFoundError(
                    f"bucket {self.name!r} does not exist at {self.endpoint}", context=context
                ) from None
            if status == 403 or code in (
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
            ):
                raise ObjectStoreAuthError(
                    f"{action} refused by {self.endpoint} ({code or status}): check the AWS "
                    "credentials in the environment or ~/.aws",
                    context={**context, "code": code, "status": status},
                ) from None
            raise ObjectStoreError(
                f"{action} failed on {self.where(key or '')}: {code or status} "
                f"{error.get('Message', '')}".rstrip(),
                context={**context, "code": code, "status": status},
            ) from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise ObjectStoreAuthError(
                f"no usable AWS credentials for {self.endpoint} ({type(exc).__name__}): set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws",
                context=context,
            ) from None
        except BotoConnectionError as exc:  # refused, timed out, reset, DNS
            raise ObjectStoreUnreachableError(
                f"cannot reach the S3 endpoint {self.endpoint} ({type(exc).__name__})",
                context=context,
            ) from None
        except BotoCoreError as exc:
            raise ObjectStoreError(
                f"{action} failed on {self.where(key or '')}: {type(exc).__name__}: {exc}",
                context=context,
            ) from None

    # -- the operations the backend uses ---------------------------------------------------

    def head_bucket(self) -> None:
        self.call("open", None, lambda: self.client.head_bucket(Bucket=self.name))

    def create_bucket(self) -> None:
        def create() -> None:
            try:
                self.client.create_bucket(Bucket=self.name)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self.call("create bucket", None, create)

    def get(
        self, key: str, if_none_match: str | None = None, limit: int | None = None
    ) -> Stored | None:
        """The object, None if missing; ``NotModified`` when ``if_none_match`` is current.

        ``limit``: refuse (``S3-SIZE-001``) an object larger than this before reading it.
        """

        def fetch() -> Stored | None:
            kwargs: dict[str, Any] = {"Bucket": self.name, "Key": key}
            if if_none_match is not None:
                kwargs["IfNoneMatch"] = if_none_match
            try:
                response = self.client.get_object(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            body = response["Body"]
            try:
                if limit is not None and response.get("ContentLength", 0) > limit:
                    raise ObjectStoreError(
                        f"{self.where(key)} is {response['ContentLength']} bytes; the limit is "
                        f"{limit}",
                        error_code="S3-SIZE-001",
                        context={"bucket": self.name, "key": key, "path": self.where(key)},
                    )
                return Stored(body.read(), response["ETag"])
            finally:
                body.close()

        return self.call("read", key, fetch)

    def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.name, Key=key)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404 or exc.response.get("Error", {}).get("Code") in (
                    "404",
                    "NoSuchKey",
                ):
                    return False
                raise
            return True

        return self.call("head", key, head)

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write ``key``; returns the new ETag. ``PreconditionFailed`` if a condition lost."""
        kwargs: dict[str, Any] = {
            "Bucket": self.name,
            "Key": key,
            "Body": data,
            "ContentType": "application/json",
        }
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match

        def write() -> str:
            try:
                return str(self.client.put_object(**kwargs)["ETag"])
            except ClientError as exc:
                # If-Match on a missing key: SeaweedFS answers 412, moto and AWS 404.
                if if_match is not None and exc.response.get("Error", {}).get("Code") in (
                    "NoSuchKey",
                    "404",
                ):
                    raise PreconditionFailed() from None
                raise

        return self.call("write", key, write)

    def delete(self, key: str, if_match: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if if_match is not None:
            kwargs["IfMatch"] = if_match

        def remove() -> None:
            try:
                self.client.delete_object(**kwargs)
            except ClientError as exc:
                if if_match is not None and exc.response.get("Error", {}).get("Code") in (
                    "NoSuchKey",
                    "404",
                ):
                    raise PreconditionFailed() from None
                raise

        self.call("delete", key, remove)

    def delete_many(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            objects: Any = [{"Key": k} for k in chunk]
            response = self.call(
                "delete",
                chunk[0],
                partial(
                    self.client.delete_objects,
                    Bucket=self.name,
                    Delete={"Objects": objects, "Quiet": True},
                ),
            )
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise ObjectStoreError(
                    f"could not delete {len(errors)} object(s), first {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message', '')}",
                    context={"bucket": self.name, "key": first.get("Key", "")},
                )

    def _list_page(self, prefix: str, kwargs: dict[str, Any]) -> Any:
        return self.call("list", prefix, partial(self.client.list_objects_v2, **kwargs))

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """Every key under ``prefix`` in key order, page by page (1,000 a page)."""
        yield from (key for key, _ in self.objects(prefix, start_after))

    def objects(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, str]]:
        """``(key, etag)`` of every object under ``prefix`` in key order, page by page."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix, "MaxKeys": 1000}
            if token is not None:
                kwargs["ContinuationToken"] = token
            elif start_after is not None:
                kwargs["StartAfter"] = start_after
            page = self._list_page(prefix, kwargs)
            for item in page.get("Contents", ()):
                yield item["Key"], item.get("ETag", "")
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def children(self, prefix: str) -> list[str]:
        """The names of the "folders" directly under ``prefix`` (delimiter listing)."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.name,
                "Prefix": prefix,
                "Delimiter": "/",
                "MaxKeys": 1000,
            }
            if token is not None:
                kwargs["ContinuationToken"] = token
            page = self._list_page(prefix, kwargs)
            for common in page.get("CommonPrefixes", ()):
                names.append(common["Prefix"][len(prefix) : -1])
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return names
            token = page["NextContinuationToken"]

    def any_key(self, prefix: str) -> bool:
        """Whether at least one object lies under ``prefix`` (an empty folder does not count)."""
        page = self.call(
            "list",
            prefix,
            lambda: self.client.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1),
        )
        return bool(page.get("Contents"))
