"""The model zoo: trained weights shipped inside catgen, addressed as ``zoo://NAME``.

A fresh clone has them without any download: the files live in ``catgen/model_zoo/weights/``
and ``catgen/model_zoo/zoo.json`` (the manifest) records, per name, the file, its SHA-256, the
config and command that reproduce it, and its measured quality. Every checkpoint argument of
catgen (``model.transfer.source_checkpoint``, a segmenter's ``checkpoint``, ``tools/test.py``'s
checkpoint ...) accepts ``zoo://NAME``: :func:`resolve_checkpoint` turns it into the file's path
after checking the SHA-256 (a modified or truncated file is refused, never loaded).

Zoo files are *slim* checkpoints written by :func:`export_zoo_checkpoint`
(``tools/export_zoo_model.py``): the weights inference and transfer need and the checkpoint's
``meta`` (class names, seed, iteration), without optimizer state. For a synthesizer that is the
EMA generator (``generator_ema.*``) and the discriminator (``discriminator.*``);
:func:`catgen.apis.load_trained_weights` loads the EMA weights into ``generator`` too. For an
mmsegmentation segmenter it is the whole model state dict.
"""
import json
import os.path as osp

from catgen.utils.cache import file_sha256
from catgen.utils.io import atomic_write, write_text_atomic

__all__ = ['ZOO_DIR', 'MANIFEST', 'SCHEME', 'ZooChecksumError', 'is_zoo_path', 'load_manifest',
           'zoo_entry', 'resolve_checkpoint', 'export_zoo_checkpoint']

ZOO_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'weights')
MANIFEST = osp.join(osp.dirname(osp.abspath(__file__)), 'zoo.json')
SCHEME = 'zoo://'
# state-dict prefixes a slim synthesizer checkpoint keeps (the EMA generator is the one that is
# evaluated and transferred; the discriminator is the starting point of transfer)
SYNTHESIZER_PREFIXES = ('generator_ema.', 'discriminator.')

class ZooChecksumError(RuntimeError):
    """A zoo file whose SHA-256 differs from the manifest's: modified, truncated or replaced."""


def is_zoo_path(path):
    """Whether ``path`` names a zoo model (``zoo://NAME``)."""
    return isinstance(path, str) and path.startswith(SCHEME)


def load_manifest(manifest=None):
    """The manifest: ``{'models': {name: {'file', 'sha256', 'bytes', 'config', ...}}}``."""
    manifest = manifest or MANIFEST
    if not osp.isfile(manifest):
        return {'models': {}}
    with open(manifest) as f:
        return json.load(f)


def zoo_entry(name, manifest=None):
    """The manifest entry of zoo model ``name`` (``zoo://`` prefix allowed).

    Raises:
        KeyError: no such model; the message lists the names there are.
    """
    manifest = manifest or MANIFEST
    name = name[len(SCHEME):] if is_zoo_path(name) else name
    models = load_manifest(manifest)['models']
    if name not in models:
        raise KeyError(f'No model {name!r} in catgen\'s model zoo ({manifest}); the zoo has: '
                       f'{", ".join(sorted(models)) or "nothing yet"} (docs/model_zoo.md).')
    return models[name]


def resolve_checkpoint(path, zoo_dir=None, manifest=None):
    """The file behind a checkpoint argument: ``zoo://NAME`` -> its verified file, else ``path``.

    Args:
        path: a checkpoint path, or ``zoo://NAME``.
        zoo_dir: folder of the zoo files (default :data:`ZOO_DIR`).
        manifest: the manifest file (default :data:`MANIFEST`).

    Returns:
        ``path`` unchanged when it is not a zoo path; else the absolute path of the zoo file,
        whose SHA-256 matched the manifest.

    Raises:
        KeyError: unknown zoo name.
        FileNotFoundError: the zoo file is missing (says how to reproduce it).
        ZooChecksumError: the file's SHA-256 differs from the manifest's.
    """
    if not is_zoo_path(path):
        return path
    zoo_dir, manifest = zoo_dir or ZOO_DIR, manifest or MANIFEST
    name = path[len(SCHEME):]
    entry = zoo_entry(name, manifest)
    file = osp.join(zoo_dir, entry['file'])
    if not osp.isfile(file):
        raise FileNotFoundError(
            f'{path}: the zoo file {file} is missing. It ships with catgen\'s source tree; restore '
            f'it with `git checkout -- {osp.relpath(file)}`, or reproduce it: '
            f'{entry.get("command", "see docs/model_zoo.md")}')
    digest = file_sha256(file, what=f'zoo file of {path}')  # memoised per (size, mtime)
    if digest != entry['sha256']:
        raise ZooChecksumError(
            f'{path}: {file} has SHA-256 {digest}, the manifest {manifest} expects '
            f'{entry["sha256"]}. The file was modified, truncated or replaced; catgen refuses to '
            f'load it. Restore it with `git checkout -- {osp.relpath(file)}`, or, if you '
            f'retrained it on purpose, re-export it with tools/export_zoo_model.py (which updates '
            f'the manifest).')
    return file


def slim_state_dict(state):
    """The weights a zoo file keeps: a synthesizer's EMA generator and discriminator (or its
    generator when it has no EMA), or everything for other models (segmenters)."""
    keys = list(state)
    if any(k.startswith('generator.') for k in keys):
        prefixes = SYNTHESIZER_PREFIXES if any(k.startswith('generator_ema.') for k in keys) \
            else ('generator.', 'discriminator.')
        return {k: v for k, v in state.items() if k.startswith(prefixes)}
    return dict(state)


def export_zoo_checkpoint(checkpoint, name, zoo_dir=None, manifest=None, info=None):
    """Write the slim zoo file of ``checkpoint`` as ``<zoo_dir>/<name>.pth`` and record it.

    The file and the manifest are written under temporary names and renamed when complete.

    Args:
        checkpoint: path of a checkpoint written by tools/train.py or tools/train_segmenter.py.
        name: the zoo name (``zoo://name``).
        zoo_dir: folder of the zoo files (default :data:`ZOO_DIR`).
        manifest: the manifest file (default :data:`MANIFEST`; created when missing; its other
            entries are kept).
        info: dict merged into the manifest entry (config, command, metrics, ...).

    Returns:
        the manifest entry written.
    """
    import torch

    from catgen.utils.checkpoint import read_state_dict, safe_load
    zoo_dir, manifest = zoo_dir or ZOO_DIR, manifest or MANIFEST
    ckpt = safe_load(checkpoint)
    state = slim_state_dict(read_state_dict(ckpt, what=f'checkpoint {checkpoint}'))
    meta = dict(ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}
    keep = {k: meta[k] for k in ('dataset_meta', 'seed', 'iter', 'epoch', 'mmengine_version',
                                 'experiment_name', 'time') if k in meta}
    keep['zoo_name'] = name
    file = f'{name}.pth'
    out = osp.join(zoo_dir, file)
    with atomic_write(out) as tmp:
        torch.save({'state_dict': {k: v.detach().clone().contiguous() for k, v in state.items()},
                    'meta': keep}, tmp)
    entry = dict(info or {})
    entry.update(file=file, sha256=file_sha256(out), bytes=osp.getsize(out),
                 float_values=int(sum(v.numel() for v in state.values()
                                    if getattr(v, 'is_floating_point', lambda: False)())),
                 iter=meta.get('iter'))
    entry.setdefault('exported_from', osp.basename(checkpoint))
    data = load_manifest(manifest)
    data.setdefault('models', {})[name] = entry
    data['models'] = dict(sorted(data['models'].items()))
    write_text_atomic(manifest, json.dumps(data, indent=2) + '\n')
    return entry
