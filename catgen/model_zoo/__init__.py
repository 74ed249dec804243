"""catgen's model zoo: weights that ship inside the package (no download), named ``zoo://NAME``.

See :mod:`catgen.model_zoo.zoo` and docs/model_zoo.md.
"""
from .zoo import (ZOO_DIR, ZooChecksumError, export_zoo_checkpoint, is_zoo_path, load_manifest,
                  resolve_checkpoint, zoo_entry)

__all__ = ['ZOO_DIR', 'ZooChecksumError', 'export_zoo_checkpoint', 'is_zoo_path', 'load_manifest',
           'resolve_checkpoint', 'zoo_entry']
