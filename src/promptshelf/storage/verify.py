"""What ``verify()`` reports: each problem with a code and the place it was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    code: str  # the error code a read would raise, or an index/layout code
    location: str  # a file path, or ``prompt_id@version`` for databases
    message: str


@dataclass
class VerifyReport:
    backend: str
    checked_prompts: int = 0
    checked_versions: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Worth knowing, not damage (e.g. unknown keys read and kept); ``ok`` ignores them.
    notices: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "ok": self.ok,
            "checked_prompts": self.checked_prompts,
            "checked_versions": self.checked_versions,
            "problems": [asdict(p) for p in self.problems],
            "notices": [asdict(n) for n in self.notices],
        }


@dataclass(frozen=True)
class Action:
    code: str  # what was wrong (the code verify() reports)
    location: str
    done: str  # what repair() did about it


@dataclass
class RepairReport:
    backend: str
    actions: list[Action] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "actions": [asdict(a) for a in self.actions]}
