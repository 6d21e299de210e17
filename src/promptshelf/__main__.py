"""``python -m promptshelf``: the same command as ``promptshelf``."""

from .console import main

main()
