"""The filesystem backend: one JSON file per version, in the original layout.

* :mod:`.store` -- :class:`FileSystemStorage`, the contract's methods;
* :mod:`.tree` -- the one object that opens and locks prompt directories;
* :mod:`.io` -- the only door to the operating system (no symlink followed);
* :mod:`.index` -- listings and ``.index.json``, caches never trusted over the files;
* :mod:`.labels`, :mod:`.trash`, :mod:`.bulk`, :mod:`.maintenance` -- one concept each;
* :mod:`.reshard` -- converting a store between the flat and the sharded layouts.
"""

from __future__ import annotations

from .index import detect_layout, layout_on_disk
from .reshard import ReshardReport, reshard
from .store import FileSystemStorage

__all__ = ["FileSystemStorage", "ReshardReport", "detect_layout", "layout_on_disk", "reshard"]
