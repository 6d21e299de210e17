"""Dify workflow files (DSL exports): import their prompts as versions, write versions back.

* :mod:`.dsl` finds the prompts of a DSL document: which node, which fields, which kind;
* :mod:`.importer` saves one version per prompt whose content changed since the last import;
* :mod:`.writeback` puts chosen versions back into the file, changing nothing else.
"""

from __future__ import annotations

from .dsl import DifyPrompt, TextField, load_app, workflow_key
from .importer import ImportReport, import_app
from .writeback import ApplyReport, apply_versions

__all__ = [
    "ApplyReport",
    "DifyPrompt",
    "ImportReport",
    "TextField",
    "apply_versions",
    "import_app",
    "load_app",
    "workflow_key",
]
