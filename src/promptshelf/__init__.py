"""promptshelf: the full version history of LLM prompts.

Every version of every prompt, with its quality analysis, the optimization
that produced it and its parent; the latest and the best in microseconds;
a diff between any two; a rollback; nothing ever lost.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers and readers; imported on first use
    from .errors import (
        ConfigurationError,
        CorruptVersionError,
        InvalidPromptIdError,
        InvalidVersionError,
        LabelHistoryDivergedError,
        LockTimeoutError,
        OptimizerError,
        StorageError,
        ValidationError,
        VersionConflictError,
        VersionError,
        VersionNotFoundError,
    )
    from .manager import VersionManager
    from .migrate import MigrationReport, migrate
    from .models import (
        IssueSeverity,
        IssueType,
        OptimizationResult,
        OptimizationStrategy,
        Prompt,
        PromptAnalysis,
        PromptIssue,
        PromptSuggestion,
        PromptVersion,
        SuggestionType,
    )
    from .retention import RetentionPolicy, RetentionReport
    from .storage import (
        FileSystemStorage,
        InMemoryStorage,
        PostgresStorage,
        SQLiteStorage,
        VersionStorage,
        load_config,
        open_storage,
    )

__version__ = "0.1.0"

#: Where each public name lives. ``import promptshelf`` imports none of them: a command
#: line call or an application that needs only the client does not pay for pydantic, SQL
#: drivers or the server (PEP 562).
_EXPORTS: dict[str, str] = {
    "ConfigurationError": ".errors",
    "CorruptVersionError": ".errors",
    "InvalidPromptIdError": ".errors",
    "InvalidVersionError": ".errors",
    "LabelHistoryDivergedError": ".errors",
    "LockTimeoutError": ".errors",
    "OptimizerError": ".errors",
    "StorageError": ".errors",
    "ValidationError": ".errors",
    "VersionConflictError": ".errors",
    "VersionError": ".errors",
    "VersionNotFoundError": ".errors",
    "VersionManager": ".manager",
    "MigrationReport": ".migrate",
    "migrate": ".migrate",
    "IssueSeverity": ".models",
    "IssueType": ".models",
    "OptimizationResult": ".models",
    "OptimizationStrategy": ".models",
    "Prompt": ".models",
    "PromptAnalysis": ".models",
    "PromptIssue": ".models",
    "PromptSuggestion": ".models",
    "PromptVersion": ".models",
    "SuggestionType": ".models",
    "RetentionPolicy": ".retention",
    "RetentionReport": ".retention",
    "FileSystemStorage": ".storage",
    "InMemoryStorage": ".storage",
    "PostgresStorage": ".storage",
    "SQLiteStorage": ".storage",
    "VersionStorage": ".storage",
    "load_config": ".storage",
    "open_storage": ".storage",
}

__all__ = [
    "ConfigurationError",
    "CorruptVersionError",
    "FileSystemStorage",
    "InMemoryStorage",
    "InvalidPromptIdError",
    "InvalidVersionError",
    "IssueSeverity",
    "IssueType",
    "LabelHistoryDivergedError",
    "LockTimeoutError",
    "MigrationReport",
    "OptimizationResult",
    "OptimizationStrategy",
    "OptimizerError",
    "PostgresStorage",
    "Prompt",
    "PromptAnalysis",
    "PromptIssue",
    "PromptSuggestion",
    "PromptVersion",
    "RetentionPolicy",
    "RetentionReport",
    "SQLiteStorage",
    "StorageError",
    "SuggestionType",
    "ValidationError",
    "VersionConflictError",
    "VersionError",
    "VersionManager",
    "VersionNotFoundError",
    "VersionStorage",
    "__version__",
    "load_config",
    "migrate",
    "open_storage",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptshelf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """Keeps ``promptshelf.migrate`` the function, not the submodule of the same name.

    Importing ``promptshelf.migrate`` (``from promptshelf.migrate import compare_stores``,
    or the command line doing so) makes the import system bind the submodule as the
    package's attribute ``migrate``; the lazily exported function would then never be
    looked up, and ``from promptshelf import migrate`` gave the module, depending on what
    was imported first. The submodule stays in ``sys.modules`` either way.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == f".{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
