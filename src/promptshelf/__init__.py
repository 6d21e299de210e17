"""promptshelf: the full version history of LLM prompts.

Every version of every prompt, with its quality analysis, the optimization
that produced it and its parent; the latest and the best in microseconds;
a diff between any two; a rollback; nothing ever lost.
"""

from __future__ import annotations

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
