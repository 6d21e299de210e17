"""``promptshelf serve``: the REST API and web page over a store, under uvicorn."""

from __future__ import annotations

import click

from ..errors import ConfigurationError
from .options import opened, resolve_target, store_option

DEFAULT_PORT = 8420


@click.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port (0: any free one)."
)
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Processes."
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
def serve(target: str | None, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the store over HTTP: the API at /api/v1, docs at /docs, the web page at /.

    Without an API key in the store (see `promptshelf keys create`) only loopback
    addresses may be bound, and loopback clients get every scope.
    """
    try:
        from ..server import auth
        from ..server.run import bind_socket
        from ..server.run import serve as run
    except ImportError as exc:
        raise ConfigurationError(
            f"the server needs {exc.name}: pip install 'promptshelf[server]'",
            error_code="SERVE-DEPS",
        ) from exc
    target = resolve_target(target)  # --store before or after the command, env, default
    with opened(target, create=True) as storage:
        keys = auth.list_keys(storage)
    if not keys and not auth.is_loopback(host):
        raise ConfigurationError(
            f"refusing to listen on {host} without API keys: anyone who reaches it could read "
            "and change every prompt. Create a key first (promptshelf keys create NAME "
            "--scope admin), or listen on 127.0.0.1",
            error_code="SERVE-NO-KEYS",
            context={"host": host},
        )
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            error_code="SERVE-BIND",
            context={"host": host, "port": port},
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"promptshelf serving {target} at http://{shown}:{bound} "
        f"(API /api/v1, docs /docs; {workers} worker{'s' if workers > 1 else ''}; "
        f"{'API keys required' if keys else 'no keys: loopback only'})",
        err=True,
    )
    try:
        run(target, sock, workers=workers, access_log=access_log)
    finally:
        sock.close()
