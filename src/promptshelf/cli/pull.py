"""``promptshelf pull``: the versions an application needs, as a bundle to ship in its image.

A bundle is an embedded promptshelf store (versions with their checksums, and the
labels pointing at them), so ``PromptClient(url, bundle=DIR)`` can start from it
with the server down, and ``promptshelf --store DIR ...`` can inspect it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from ..errors import OptimizerError
from ..storage import FileSystemStorage, VersionStorage
from .options import output_options, with_store
from .staging import staged_directory


@click.command()
@click.option(
    "--label",
    "labels",
    multiple=True,
    default=("production",),
    show_default=True,
    help="Label to pull (repeat for several).",
)
@click.option("--prefix", default="", help="Only prompts whose id starts with this.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Bundle directory (created; an existing bundle is brought up to date).",
)
@output_options
@with_store()
def pull(
    storage: VersionStorage, labels: tuple[str, ...], prefix: str, output: Path, fmt: str
) -> None:
    """Write the version each LABEL names, for every prompt, to a bundle directory."""
    if output.exists() and any(output.iterdir()) and not is_bundle(output):
        raise OptimizerError(
            f"{output} exists and is not a bundle (no {MARKER}); not writing into it",
            error_code="PULL-TARGET-001",
            context={"output": str(output)},
        )
    wanted = [p for p in storage.list_prompts() if p.startswith(prefix)]
    pulled = prompts = 0
    with staged_directory(output) as work, FileSystemStorage(work) as bundle:
        _mark(work)  # before any version: a pull cut short is still a bundle to pull into
        for prompt_id in wanted:
            found = storage.list_labels(prompt_id)
            held = bundle.list_labels(prompt_id) if prompt_id in bundle.list_prompts() else {}
            took = False
            for label in labels:
                number = found.get(label)
                if number is None:
                    if label in held:
                        bundle.remove_label(prompt_id, label, actor="pull", reason="gone")
                    continue
                version = storage.get_version(prompt_id, number)
                if version is None:  # deleted since the listing
                    continue
                if bundle.get_version(prompt_id, number) != version:
                    if bundle.delete_version(prompt_id, number, force=True):
                        bundle.empty_trash()
                    bundle.save_version(version)
                if bundle.get_label(prompt_id, label) != number:
                    bundle.set_label(prompt_id, label, number, actor="pull")
                pulled += 1
                took = True
            prompts += took
        if pulled == 0:
            raise OptimizerError(
                f"no prompt{f' starting with {prefix!r}' if prefix else ''} has the label(s) "
                f"{', '.join(labels)}",
                error_code="PULL-EMPTY",
                context={"labels": list(labels), "prefix": prefix},
            )
    if fmt in ("json", "nl"):
        summary = {
            "pulled": pulled,
            "prompts": prompts,
            "labels": list(labels),
            "output": str(output),
        }
        click.echo(json.dumps(summary, indent=2 if fmt == "json" else None))
        return
    click.echo(f"pulled {pulled} version(s) of {prompts} prompt(s) into {output}")


#: What only a bundle has: written by ``pull`` in the bundle's root.
MARKER = ".promptshelf-bundle.json"
_VERSION_FILE = re.compile(r"\d+\.\d+\.\d+\.json(\.gz)?")


def is_bundle(path: Path) -> bool:
    """A directory ``pull`` wrote: its marker, or (a bundle pulled before the marker
    existed) nothing but prompt directories each holding a label log and version files."""
    if (path / MARKER).is_file():
        return True
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return bool(entries) and all(
        e.is_dir()
        and not e.is_symlink()
        and (e / ".labels.jsonl").is_file()
        and all(
            c.name.startswith(".") or (c.is_file() and _VERSION_FILE.fullmatch(c.name))
            for c in e.iterdir()
        )
        for e in entries
    )


def _mark(path: Path) -> None:
    """Write the marker (atomically; once)."""
    marker = path / MARKER
    if marker.is_file():
        return
    temporary = path / f"{MARKER}.{os.getpid()}.tmp"
    temporary.write_text(
        json.dumps({"format": "promptshelf-bundle", "version": 1}) + "\n", encoding="utf-8"
    )
    os.replace(temporary, marker)
