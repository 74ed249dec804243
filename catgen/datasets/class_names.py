"""Class names of a label space, from a list, a built data set or a data set config.

Used wherever two label spaces meet (CAT's affinity, evaluation): a config names the classes
once, through the data set that has them.
"""
from catgen.registry import DATASETS


def class_names_of(spec):
    """Class names from a list, a built data set, or a data set config (``dict(type=...)``).

    A config's class ``METAINFO['classes']`` is used when the class declares them (no data
    needed); otherwise the data set is built lazily and its ``metainfo['classes']`` read.
    """
    if spec is None:
        return None
    if hasattr(spec, 'metainfo'):
        return [str(n) for n in spec.metainfo['classes']]
    if isinstance(spec, dict):
        cls = DATASETS.get(spec['type'])
        classes = getattr(cls, 'METAINFO', {}).get('classes')
        if not classes:
            classes = build_dataset(dict(spec, lazy_init=True)).metainfo['classes']
        return [str(n) for n in classes]
    if isinstance(spec, str):
        raise TypeError(f'class names must be a list of names or a data set config, got the '
                        f'string {spec!r}')
    return [str(n) for n in spec]


def real_class_names(names, channels, what):
    """Drop the leading don't-care name when ``names`` has one name per channel.

    Args:
        names: class names, with (``channels`` names) or without (``channels - 1``) don't care.
        channels: the model's channel count for that side (don't care included).
    """
    if names is None:
        return None
    if len(names) == channels:
        return list(names[1:])
    if len(names) == channels - 1:
        return list(names)
    raise ValueError(f'{len(names)} {what} class names {names[:5]}... do not fit the '
                     f'model\'s {channels} {what} channels (don\'t care included): expected '
                     f'{channels - 1} real class names, or {channels} with the don\'t-care name '
                     f'first.')


def build_dataset(cfg):
    """A catgen data set from its config; the pipeline is dropped (only files are read)."""
    from catgen.utils.setup_env import guarded_default_scope
    cfg = {k: v for k, v in dict(cfg).items() if k != 'pipeline'}
    with guarded_default_scope('catgen'):
        return DATASETS.build(cfg)
