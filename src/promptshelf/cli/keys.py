"""``promptshelf keys``: API keys for the server, stored hashed in the store itself."""

from __future__ import annotations

import json

import click

from .. import render
from ..storage import VersionStorage
from .options import note, output_options, with_store


@click.group()
def keys() -> None:
    """API keys for `promptshelf serve`: create, list, revoke."""


@keys.command(name="create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(["read", "write", "admin"]),
    default=("read",),
    show_default=True,
    help="read < write < admin (each includes the ones before it).",
)
@output_options
@with_store(create=True)
def keys_create(storage: VersionStorage, name: str, scopes: tuple[str, ...], fmt: str) -> None:
    """Create a key called NAME and print it, once: only its hash is stored."""
    from ..server.auth import create_key

    key, token = create_key(storage, name, scopes)
    if fmt in ("json", "nl"):
        click.echo(json.dumps({**key.to_dict(), "token": token}))
        return
    click.echo(token)
    note(
        f"Created key {key.key_id} ({name}, scopes {', '.join(key.scopes)}); "
        "it is shown only now: store it safely."
    )


@keys.command(name="list")
@output_options
@with_store()
def keys_list(storage: VersionStorage, fmt: str) -> None:
    """The keys in the store (ids, names, scopes; never the secrets)."""
    from ..server.auth import list_keys

    found = list_keys(storage)
    if fmt == "json":
        click.echo(json.dumps([k.to_dict() for k in found], indent=2))
    elif fmt == "nl":
        for k in found:
            click.echo(json.dumps(k.to_dict()))
    elif not found:
        click.echo("No keys: the server answers loopback clients only.")
    else:
        for k in found:
            click.echo(f"{k.key_id}  {k.name:<20} {','.join(k.scopes):<18} {k.created_at}")


@keys.command(name="revoke")
@click.argument("key_id")
@output_options
@with_store()
def keys_revoke(storage: VersionStorage, key_id: str, fmt: str) -> None:
    """Delete key KEY_ID (every server stops accepting it within 2 seconds)."""
    from ..errors import OptimizerError
    from ..server.auth import revoke_key

    if not revoke_key(storage, key_id):
        raise OptimizerError(f"no key {key_id!r}", error_code="KEY-NOT-FOUND")
    render.result(f"Revoked key {key_id}", {"key_id": key_id, "revoked": True}, fmt)
