"""One exception hierarchy for promptshelf.

Every error carries a stable ``error_code`` (the original design's codes are
kept) and a ``context`` dict naming what failed, so callers and logs can act on
the code rather than on the message. Each class also inherits the matching
built-in exception, so ``except LookupError`` or ``except TimeoutError`` work.
"""

from __future__ import annotations

from typing import Any


class OptimizerError(Exception):
    """Root of every promptshelf error (name kept from the original design)."""

    default_code = "PS-000"

    def __init__(
        self,
        message: str,
        error_code: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code or self.default_code
        self.context: dict[str, Any] = dict(context or {})

    def __str__(self) -> str:
        return f"[{self.error_code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message, "context": self.context}


class ValidationError(OptimizerError, ValueError):
    """Bad input: a hostile id, a malformed version, oversized data. Nothing was written."""

    default_code = "PS-VALID-001"


class InvalidPromptIdError(ValidationError):
    default_code = "PS-ID-001"


class InvalidVersionError(ValidationError):
    default_code = "PS-VERSION-001"


class PayloadTooLargeError(ValidationError):
    default_code = "PS-SIZE-001"


class VersionError(OptimizerError):
    """Errors about versions as such (not about how they are stored)."""

    default_code = "VERSION-000"


class VersionNotFoundError(VersionError, LookupError):
    default_code = "VERSION-NOT-FOUND"

    def __init__(self, prompt_id: str, version: str, context: dict[str, Any] | None = None) -> None:
        self.prompt_id = prompt_id
        self.version = version
        ctx = {"prompt_id": prompt_id, "version": version, **(context or {})}
        why = f" ({ctx['reason']})" if "reason" in ctx else ""
        super().__init__(f"version {version!r} of prompt {prompt_id!r} not found{why}", context=ctx)


class VersionConflictError(VersionError, FileExistsError):
    """The (prompt_id, version) pair already exists; versions are written once."""

    default_code = "VERSION-CONFLICT"

    def __init__(self, prompt_id: str, version: str, context: dict[str, Any] | None = None) -> None:
        self.prompt_id = prompt_id
        self.version = version
        ctx = {"prompt_id": prompt_id, "version": version, **(context or {})}
        super().__init__(f"version {version!r} of prompt {prompt_id!r} already exists", context=ctx)


class LabelError(VersionError):
    default_code = "LABEL-000"


class LabelNotFoundError(LabelError, LookupError):
    default_code = "LABEL-NOT-FOUND"


class LabelInUseError(LabelError):
    """A version a label points at cannot be deleted without ``force=True``."""

    default_code = "LABEL-IN-USE"


class LabelMovedError(LabelError):
    """A label change made on a condition (``expected_seq``) found the label elsewhere: another
    writer moved, set or removed it meanwhile. Nothing was changed."""

    default_code = "LABEL-MOVED"


class LabelHistoryDivergedError(LabelError):
    """A store's label history is not a prefix of the history being imported into it."""

    default_code = "LABEL-DIVERGED"


class DocumentConflictError(OptimizerError, FileExistsError):
    """A document write lost a compare-and-swap: it exists already, or its revision moved."""

    default_code = "DOC-CONFLICT"


class RenderError(OptimizerError, ValueError):
    """A strict render found placeholders with no value."""

    default_code = "RENDER-MISSING"


class PromptKindError(ValidationError):
    """A version would change its prompt's kind (text to chat or back); kinds are fixed."""

    default_code = "PS-KIND-001"


class DifyError(OptimizerError, ValueError):
    """A Dify workflow file cannot be read, or a version cannot be written back into it."""

    default_code = "DIFY-000"


class VariableMismatchError(ValidationError):
    """Declared variables and the text's placeholders disagree (strict mode)."""

    default_code = "PS-VARIABLES-001"


class StorageError(OptimizerError, OSError):
    """A storage backend failed to do what was asked."""

    default_code = "FS-SAVE-001"


class SaveError(StorageError):
    default_code = "FS-SAVE-001"


class LoadError(StorageError):
    default_code = "FS-LOAD-002"


class CorruptVersionError(LoadError):
    """A stored version is unreadable JSON, fails validation, or is misnamed."""

    default_code = "FS-LOAD-001"


class ChecksumMismatchError(CorruptVersionError):
    """A stored version no longer matches the SHA-256 it was saved with."""

    default_code = "PS-CHECKSUM-001"


class DeleteError(StorageError):
    default_code = "FS-DELETE-001"


class AtomicWriteError(StorageError):
    default_code = "FS-ATOMIC-001"


class LockTimeoutError(StorageError, TimeoutError):
    default_code = "FS-LOCK-001"


class StoreNotFoundError(LoadError, LookupError):
    """There is no store where one was expected (and creating one was not asked for)."""

    default_code = "STORE-NOT-FOUND"


class CorruptStoreError(LoadError):
    """The store itself (a database file, its schema) is damaged or not a store."""

    default_code = "STORE-CORRUPT-001"


class SymlinkError(LoadError):
    """A symlink inside a store (a prompt directory, a version file, the label log, the
    trash): refused for reading and writing, never followed out of the store."""

    default_code = "FS-SYMLINK-001"


class DatabaseError(StorageError):
    """A database backend failed in a way no narrower error describes."""

    default_code = "DB-001"


class ConnectionLostError(DatabaseError, ConnectionError):
    """The database connection dropped mid-operation; the next call reconnects."""

    default_code = "DB-CONN-001"


class ObjectStoreError(StorageError):
    """An object store (S3) request failed after its bounded retries."""

    default_code = "S3-001"


class ObjectStoreUnreachableError(ObjectStoreError, ConnectionError):
    """The S3 endpoint refused or did not answer the connection."""

    default_code = "S3-CONN-001"


class ObjectStoreAuthError(ObjectStoreError, PermissionError):
    """The S3 endpoint refused the credentials, or there were none."""

    default_code = "S3-AUTH-001"


class ConfigurationError(OptimizerError, ValueError):
    default_code = "PS-CONFIG-001"


class LayoutMismatchError(ConfigurationError):
    """A store opened (or initialised) with a layout other than the one on disk."""

    default_code = "FS-LAYOUT-001"


class ServerUnavailableError(StorageError, ConnectionError):
    """A promptshelf server could not be reached (or answered 5xx), and nothing cached,
    bundled or given as a fallback could stand in."""

    default_code = "CLIENT-OFFLINE-001"


class ProtocolError(StorageError):
    """A promptshelf server answered something that is not what the API documents."""

    default_code = "CLIENT-PROTOCOL-001"


__all__ = [
    "AtomicWriteError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "ConnectionLostError",
    "CorruptStoreError",
    "CorruptVersionError",
    "DatabaseError",
    "DeleteError",
    "DifyError",
    "DocumentConflictError",
    "InvalidPromptIdError",
    "InvalidVersionError",
    "LabelError",
    "LabelHistoryDivergedError",
    "LabelInUseError",
    "LabelNotFoundError",
    "LayoutMismatchError",
    "LoadError",
    "LockTimeoutError",
    "ObjectStoreAuthError",
    "ObjectStoreError",
    "ObjectStoreUnreachableError",
    "OptimizerError",
    "PayloadTooLargeError",
    "PromptKindError",
    "ProtocolError",
    "RenderError",
    "SaveError",
    "ServerUnavailableError",
    "StorageError",
    "StoreNotFoundError",
    "SymlinkError",
    "ValidationError",
    "VariableMismatchError",
    "VersionConflictError",
    "VersionError",
    "VersionNotFoundError",
]
