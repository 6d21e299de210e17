"""``python -m promptshelf``: the same command as ``promptshelf``."""

from .cli import main

main()
