"""The package's lazily exported names are what they say, whatever was imported first."""

from __future__ import annotations

import subprocess
import sys


def test_migrate_is_the_function_after_its_submodule_was_imported() -> None:
    # (as before exports were lazy: the package attribute is the function; the submodule
    # is sys.modules["promptshelf.migrate"])
    code = (
        "import sys\n"
        "from promptshelf.migrate import compare_stores\n"
        "module = sys.modules['promptshelf.migrate']\n"
        "from promptshelf import migrate, MigrationReport\n"
        "import promptshelf\n"
        "assert callable(migrate) and migrate is module.migrate, migrate\n"
        "assert promptshelf.migrate is module.migrate and callable(compare_stores)\n"
        "assert MigrationReport is module.MigrationReport\n"
        "assert module is not migrate\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_storage_base_keeps_the_contract_only() -> None:
    """The codec and the label-event logic live in modules of their own; ``storage.base``
    does not re-export their names (importers use ``storage.codec``/``storage.labelevents``)."""
    from promptshelf.storage import base

    for name in (
        "encode_version",
        "decode_version",
        "MAX_VERSION_BYTES",
        "labels_blocking",
        "next_label_event",
    ):
        assert not hasattr(base, name), f"storage.base still re-exports {name}"
