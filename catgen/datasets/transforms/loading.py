"""Loading transforms: read an image and its label map, map the label map to channel space.

How a data set declares its label mapping
-----------------------------------------
Every catgen data set puts two keys into each sample's results dict (from its ``metainfo``):

- ``num_classes`` (int): channels in channel space, the don't-care channel ``0`` included.
- ``label_shift`` (0 or 1):
    - ``1``: on-disk ids ``0..num_classes-2`` become ``k + 1`` and on-disk ``255`` (ignore)
      becomes ``0`` (SynthScenes, the generic folder layout, COCO-Stuff);
    - ``0``: on-disk ids ``0..num_classes-1`` are used as is, ``0`` being don't care (ADE20K,
      Cityscapes).

:class:`LoadSISAnnotations` reads them from the results dict; its own ``num_classes`` /
``label_shift`` arguments, when given, take precedence (for use without a catgen data set).
Any other on-disk id is a :class:`ValueError` that names the file, the bad ids and the valid
range.
"""
import numpy as np
from PIL import Image

from catgen.registry import TRANSFORMS

#: the on-disk id of "ignore" in data sets with ``label_shift=1``.
ON_DISK_IGNORE = 255


def read_rgb_image(path):
    """Read ``path`` as ``np.uint8[H, W, 3]`` RGB.

    Raises FileNotFoundError when it is missing and OSError, naming the file and what to do, when
    it cannot be decoded (truncated, corrupt, not an image).
    """
    try:
        with Image.open(path) as im:
            im.load()  # decode now so that truncated files fail here
            arr = np.asarray(im.convert('RGB'), dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f'Image file {path} does not exist; check data_root and the '
                                f'data set layout (see docs/datasets.md). If it was moved or '
                                f'deleted after the data set was listed, restore it or start '
                                f'again so that the folders are scanned anew.') from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise OSError(f'Cannot read image {path} ({type(e).__name__}: {e}). The file is '
                      f'truncated, corrupt or not an image: re-export or re-download it, or '
                      f'remove it and its label map from the data set.') from e
    return np.ascontiguousarray(arr)


def read_label_map(path, what='label map'):
    """Read a single-channel label (or instance) map as an integer ``np.ndarray[H, W]``.

    PNG modes ``L``, ``P`` (palette indices), ``I`` and ``I;16`` are read as they are; an ``RGB``
    file is accepted only when its three channels are equal (a grey image saved as RGB).
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.array(im)
    except FileNotFoundError:
        raise FileNotFoundError(f'The {what} {path} does not exist; check data_root and the '
                                f'data set layout (see docs/datasets.md).') from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise OSError(f'Cannot read {what} {path} ({type(e).__name__}: {e}). The file is '
                      f'truncated, corrupt or not a PNG: regenerate it, or remove it and its '
                      f'image from the data set.') from e
    if arr.ndim == 3:
        if arr.shape[2] in (3, 4) and (arr[..., 0] == arr[..., 1]).all() and \
                (arr[..., 0] == arr[..., 2]).all():
            arr = arr[..., 0]
        else:
            raise ValueError(f'The {what} {path} is a colour image (mode {mode}); catgen needs '
                             f'one channel of class ids (PNG mode L or P), not a colour '
                             f'visualisation. Convert colours to ids first.')
    return arr


def map_to_channel_space(raw, num_classes, label_shift, path='<array>'):
    """Map on-disk ids ``raw`` (integer ``[H, W]``) to channel space ``np.int64[H, W]``.

    See the module docstring for ``label_shift``. Raises ValueError naming ``path``, the bad ids
    and the valid range when an id is outside it.
    """
    if label_shift not in (0, 1):
        raise ValueError(f'label_shift must be 0 (ids used as is) or 1 (k -> k + 1, 255 -> 0), '
                         f'got {label_shift!r}')
    raw = np.asarray(raw).astype(np.int64, copy=False)
    if label_shift:
        n_real = num_classes - 1
        bad_mask = ((raw < 0) | (raw >= n_real)) & (raw != ON_DISK_IGNORE)
        valid = f'0..{n_real - 1} (classes) and {ON_DISK_IGNORE} (ignore)'
    else:
        bad_mask = (raw < 0) | (raw >= num_classes)
        valid = f'0..{num_classes - 1} (0 = don\'t care)'
    if bad_mask.any():
        bad = np.unique(raw[bad_mask])
        shown = ', '.join(str(int(b)) for b in bad[:10]) + (' ...' if len(bad) > 10 else '')
        raise ValueError(f'Label map {path} has ids outside the class list: {shown} '
                         f'({int(bad_mask.sum())} pixels). Valid on-disk ids for this data set: '
                         f'{valid} ({num_classes} channels with don\'t care). Check that the file '
                         f'belongs to this data set and that the classes are right.')
    if label_shift:
        return np.where(raw == ON_DISK_IGNORE, 0, raw + 1)
    return raw.copy()


def instance_edges(inst):
    """Boundaries of an instance map ``inst`` (integer ``[H, W]``) as ``np.uint8[H, W]`` in {0, 1}.

    A pixel is an edge when its left/right/up/down neighbour has another instance id (as SPADE's
    ``get_edges``).
    """
    edge = np.zeros(inst.shape, dtype=bool)
    dx = inst[:, 1:] != inst[:, :-1]
    dy = inst[1:, :] != inst[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge.astype(np.uint8)


@TRANSFORMS.register_module()
class LoadSISImageFromFile:
    """Read ``results['img_path']`` into ``results['img']`` (``np.uint8[H, W, 3]``, RGB).

    Sets ``ori_shape`` and ``img_shape`` to ``(H, W)`` and ``flip`` to False.
    """

    def __call__(self, results):
        img = read_rgb_image(results['img_path'])
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        results['flip'] = False
        return results

    transform = __call__

    def __repr__(self):
        return f'{type(self).__name__}()'


@TRANSFORMS.register_module()
class LoadSISAnnotations:
    """Read ``results['seg_map_path']`` into ``results['gt_seg_map']`` (``np.int64[H, W]``, channel
    space) and check it against the image.

    Args:
        num_classes: channels with don't care; ``None`` takes ``results['num_classes']``.
        label_shift: 0 or 1 (see the module docstring); ``None`` takes ``results['label_shift']``.
        with_instance: also read the sample's instance map (``results['instance_path']``, set by
            the data sets that have one: Cityscapes ``*_gtFine_instanceIds.png``, COCO-Stuff's
            instance folder) into ``gt_instance_map`` (``np.int32[H, W]``) and its boundaries
            into ``instance_edges`` (``np.uint8[H, W]`` in {0, 1}, :func:`instance_edges`),
            which :class:`PackSISInputs` passes on as ``inputs['edges']``. SPADE's default where
            the data set has instance maps (the official ``no_instance`` is off); on a data set
            without them (ADE20K, SynthScenes, folders) it is an error. The instance map is also
            read when the data set asks for it (``results['with_instance']``, set by
            ``CityscapesDataset(with_instance_edges=True)``).

    Errors: ids outside the valid range, or a label (instance) map whose size differs from the
    image's (both files and sizes named) raise ValueError; a missing instance map raises
    FileNotFoundError naming it.
    """

    def __init__(self, num_classes=None, label_shift=None, with_instance=False):
        self.num_classes = num_classes
        self.label_shift = label_shift
        self.with_instance = bool(with_instance)

    def __call__(self, results):
        path = results['seg_map_path']
        num_classes = self.num_classes if self.num_classes is not None \
            else results.get('num_classes')
        if num_classes is None:
            raise ValueError(f'LoadSISAnnotations does not know num_classes for {path}: use a '
                             f'catgen data set (it sets results["num_classes"]) or pass '
                             f'num_classes=... to the transform.')
        label_shift = self.label_shift if self.label_shift is not None \
            else results.get('label_shift', 0)
        raw = read_label_map(path)
        self._check_size(results, raw.shape, path, 'label map')
        results['gt_seg_map'] = map_to_channel_space(raw, int(num_classes), label_shift, path)
        if 'img' not in results:
            results['ori_shape'] = raw.shape[:2]
            results['img_shape'] = raw.shape[:2]
            results.setdefault('flip', False)
        if self.with_instance or results.get('with_instance', False):
            self._load_instance(results, raw.shape, path)
        return results

    transform = __call__

    @staticmethod
    def _load_instance(results, shape, path):
        inst_path = results.get('instance_path')
        if not inst_path:
            raise ValueError(
                f'LoadSISAnnotations(with_instance=True): the data set gives no instance map for '
                f'{path}. Instance maps come with Cityscapes (gtFine *_instanceIds.png) and '
                f'COCO-Stuff (instance PNGs made from the COCO instance annotations, see '
                f'docs/datasets.md); ADE20K, SynthScenes and folder data sets have none: set '
                f'with_instance=False (and model.data_preprocessor.instance_edges=False).')
        try:
            inst = read_label_map(inst_path, what='instance map')
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'{e} It is read because with_instance=True (SPADE\'s instance edges): '
                f'provide it, or set with_instance=False in LoadSISAnnotations and '
                f'model.data_preprocessor.instance_edges=False.') from None
        if inst.shape != tuple(shape):
            raise ValueError(f'Instance map {inst_path} is {inst.shape[0]}x{inst.shape[1]} '
                             f'(HxW) but label map {path} is {shape[0]}x{shape[1]}; '
                             f'they must be the same size.')
        results['gt_instance_map'] = inst.astype(np.int32)
        results['instance_edges'] = instance_edges(inst)

    @staticmethod
    def _check_size(results, shape, path, what):
        img = results.get('img')
        if img is not None and tuple(img.shape[:2]) != tuple(shape[:2]):
            raise ValueError(
                f'Image {results.get("img_path")} is {img.shape[0]}x{img.shape[1]} (HxW) but its '
                f'{what} {path} is {shape[0]}x{shape[1]}; an image and its label map must be the '
                f'same size (resize the label map with nearest-neighbour, or fix the pairing).')

    def __repr__(self):
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'label_shift={self.label_shift}, with_instance={self.with_instance})')
