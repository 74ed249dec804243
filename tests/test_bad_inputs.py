"""The catalogue of bad inputs: each is built on the fly, fed to the entry point a user would hit,
and must fail with the right exception and a message that says what was expected, names the
offending file / key / value, and says what to do. docs/troubleshooting.md lists the same cases.

Every case is a function ``(ctx) -> (call, needles)``: it writes the bad input under
``ctx.tmp``, returns the call that must raise and the substrings the message must contain.
Cases known to be answered badly today (the fix lives in a file outside this catalogue's reach)
are registered with ``gap=<what is wrong>``, i.e. marked ``xfail(strict=True)``: they run for
real, and start failing the day they are fixed, so that the mark is removed.
"""
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))

from conftest import tiny_oasis_options  # noqa: E402

SOURCE_CONFIG = str(ROOT / 'configs/oasis/oasis_synthscenes-source.py')


def _tool(name):
    """tools/<name>.py as a module (a unique module name: tools/test.py is no stdlib 'test')."""
    spec = importlib.util.spec_from_file_location(f'catgen_tool_{name}',
                                                  ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Ctx:
    tmp: Path
    data: Path  # the session's tiny SynthScenes: read only, copy before spoiling
    check_type: object = None  # an exception class (tuple) the error must also be

    def copy_data(self):
        """A private copy of the tiny SynthScenes (about 120 small PNGs)."""
        dst = self.tmp / 'synthscenes'
        shutil.copytree(self.data, dst)
        return dst

    def options(self, data_root=None, extra=()):
        """``--work-dir DIR --cfg-options ...`` for a one-iteration tiny run of the source
        config (tools/train.py and tools/test.py)."""
        work = self.tmp / 'work'
        opts = tiny_oasis_options(data_root or self.data, work, max_iters=1, checkpoint_interval=1)
        argv = [f'{k}={v}' for k, v in opts.items()
                if k not in ('custom_hooks', 'randomness', 'work_dir')]
        return ['--work-dir', str(work), '--cfg-options', *argv, 'custom_hooks=[]', *extra]

    def train_argv(self, data_root=None, extra=()):
        return [SOURCE_CONFIG, *self.options(data_root, extra)]


def target_dataset(root, **kw):
    from catgen.registry import DATASETS
    pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                dict(type='PackSISInputs')]
    return DATASETS.build(dict(type='SynthScenesDataset', data_root=str(root), domain='target',
                               split='train', pipeline=pipeline, **kw))


def ann(root, i=3):
    return root / 'target' / 'annotations' / 'train' / f'{i:06d}.png'


def img(root, i=3):
    return root / 'target' / 'images' / 'train' / f'{i:06d}.png'


TARGET = ['lawn', 'lake', 'forest']
SOURCE = ['sky', 'grass', 'water', 'tree']
A = [[0.0, 0.9, 0.1, 0.0], [0.1, 0.0, 0.9, 0.0], [0.0, 0.2, 0.0, 0.8]]


def affinity_json(ctx, name, **override):
    """A saved affinity matrix (JSON only) with some fields overridden."""
    d = {'format': 'catgen.AffinityMatrix', 'version': 1, 'target_classes': TARGET,
         'source_classes': SOURCE, 'meta': {}, 'values': A}
    d.update(override)
    path = ctx.tmp / f'{name}.json'
    path.write_text(json.dumps(d))
    return path


def tiny_generator(kind='OASISGenerator', num_classes=12):
    from catgen.registry import MODELS
    cfg = dict(type=kind, num_classes=num_classes, z_dim=4, base_channels=4, crop_size=32,
               spade_hidden=8)
    if kind == 'OASISGenerator':
        cfg['channel_multipliers'] = (4, 2, 1)
    return MODELS.build(cfg)


CASES = []


def case(exc, gap=None):
    """Register a catalogue case (its id is the function name with dashes); ``gap`` marks a
    case answered badly today, by code outside this catalogue's files (see the module doc)."""
    def register(fn):
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        CASES.append(pytest.param(fn, exc, id=fn.__name__.replace('_', '-'), marks=marks))
        return fn
    return register


# ---------------------------------------------------------------------------------- configs
@case(FileNotFoundError)
def config_file_missing(ctx):
    path = ctx.tmp / 'configs' / 'oasis_synthscenes-sorce.py'
    return (lambda: _tool('train').main([str(path)]),
            [str(path), 'does not exist', 'configs/oasis/oasis_synthscenes-source.py'])


@case(SyntaxError)
def config_syntax_error(ctx):
    path = ctx.tmp / 'broken.py'
    path.write_text("_base_ = ['x.py']\nmodel = dict(type='OASISSynthesizer'\ntrain_cfg = 1\n")
    return (lambda: _tool('train').main([str(path)]),
            [str(path), 'is not valid Python', 'line 2', 'fix the syntax'])


@case(SyntaxError)
def config_base_syntax_error(ctx):
    base, child = ctx.tmp / 'my_base.py', ctx.tmp / 'my_config.py'
    base.write_text("model = dict(\n    type='OASISSynthesizer',\n    generator=dict(type='X'\n")
    child.write_text("_base_ = ['my_base.py']\nmodel = dict(ema_momentum=0.1)\n")
    return (lambda: _tool('train').main([str(child)]),
            [f'config file {base} (a _base_ of {child}) is not valid Python', 'line 3',
             'fix the syntax'])


@case(KeyError)
def config_type_typo(ctx):
    argv = ctx.train_argv(extra=['model.generator.type=OASISGenerater'])
    return (lambda: _tool('train').main(argv),
            ['"OASISGenerater" is not registered', 'Closest registered names: OASISGenerator',
             'Check the spelling of `type`'])


@case(ImportError)
def config_custom_imports_module_missing(ctx):
    path = ctx.tmp / 'with_plugin.py'
    path.write_text(f'_base_ = [{SOURCE_CONFIG!r}]\n'
                    "custom_imports = dict(imports=['my_missing_plugin'], "
                    'allow_failed_imports=False)\n')
    return (lambda: _tool('train').main([str(path)]),
            [str(path), "module 'my_missing_plugin'", 'custom_imports', 'pip install -e',
             'PYTHONPATH'])


@case(ValueError)
def cfg_options_key_typo(ctx):
    argv = ctx.train_argv(extra=['train_cfg.max_iter=3'])
    return (lambda: _tool('train').main(argv),
            ['--cfg-options train_cfg.max_iter', "IterBasedTrainLoop takes no argument "
             "'max_iter'", "Did you mean 'max_iters'", 'fix the spelling'])


@case(ValueError)
def cfg_options_nested_key_typo(ctx):
    argv = ctx.train_argv(extra=['model.generator.base_channel=8'])
    return (lambda: _tool('train').main(argv),
            ['model.generator.base_channel', "OASISGenerator takes no argument",
             "'base_channels'", 'fix the spelling'])


@case(ValueError)
def model_num_classes_differs_from_data(ctx):
    # the source data has 20 classes + don't care = 21 channels; the model is told 12
    argv = ctx.train_argv(extra=['model.data_preprocessor.num_classes=12'])
    return (lambda: _tool('train').main(argv),
            ['Label map', str(ctx.data / 'source' / 'annotations' / 'train'), 'outside [0, 12)',
             'num_classes of the data preprocessor must match the data set'])


@case(FloatingPointError)
def nan_loss_stops_training(ctx):
    argv = ctx.train_argv(extra=['model.loss.loss_weight=nan'])
    return (lambda: _tool('train').main(argv),
            ['Non-finite loss "loss_d_fake" = nan at iteration 0', 'training stopped',
             'model.nonfinite="skip"'])


# ------------------------------------------------------------------------------------- data
@case(FileNotFoundError)
def data_root_missing(ctx):
    missing = ctx.tmp / 'data' / 'synthscenes'
    argv = ctx.train_argv(data_root=missing)
    return (lambda: _tool('train').main(argv),
            [f'data root {missing} does not exist', 'Expected layout',
             f'python tools/prepare_synthscenes.py --out {missing}'])


@case(FileNotFoundError)
def classes_json_missing(ctx):
    root = ctx.copy_data()
    os.remove(root / 'classes.json')
    return (lambda: target_dataset(root),
            [f'classes file {root / "classes.json"} does not exist',
             'python tools/prepare_synthscenes.py'])


@case(ValueError)
def classes_json_corrupt(ctx):
    root = ctx.copy_data()
    (root / 'classes.json').write_text('{"source": {"classes": ["sky"')
    return (lambda: target_dataset(root),
            [f'Cannot parse {root / "classes.json"} as JSON', '"classes": [...]',
             'Fix the file'])


@case(ValueError)
def split_empty(ctx):
    root = ctx.copy_data()
    for f in (root / 'target' / 'images' / 'train').iterdir():
        f.unlink()
    return (lambda: target_dataset(root),
            ['the split is empty', str(root / 'target' / 'images' / 'train'),
             'Put the images there'])


@case(FileNotFoundError)
def label_map_missing(ctx):
    root = ctx.copy_data()
    os.remove(ann(root))
    return (lambda: target_dataset(root),
            [f'image {img(root)} has no label map', f'expected {ann(root)}',
             'add it or remove the image'])


@case(FileNotFoundError)
def image_deleted_after_listing(ctx):
    root = ctx.copy_data()
    dataset = target_dataset(root)
    os.remove(img(root))
    return (lambda: dataset[3],
            [f'Image file {img(root)} does not exist', 'restore it'])


@case(OSError)
def image_truncated_png(ctx):
    root = ctx.copy_data()
    data = img(root).read_bytes()
    img(root).write_bytes(data[:len(data) // 2])
    return (lambda: target_dataset(root)[3],
            [f'Cannot read image {img(root)}', 'truncated',
             'remove it and its label map from the data set'])


@case(OSError)
def label_map_truncated_png(ctx):
    root = ctx.copy_data()
    data = ann(root).read_bytes()
    ann(root).write_bytes(data[:len(data) // 3])
    return (lambda: target_dataset(root)[3],
            [f'Cannot read label map {ann(root)}', 'truncated', 'regenerate it'])


@case(ValueError)
def label_map_size_differs_from_image(ctx):
    root = ctx.copy_data()
    Image.open(ann(root)).resize((32, 32), Image.NEAREST).save(ann(root))
    return (lambda: target_dataset(root)[3],
            [f'Image {img(root)} is 64x64', f'label map {ann(root)} is 32x32',
             'resize the label map with nearest-neighbour'])


@case(ValueError)
def label_id_out_of_range(ctx):
    root = ctx.copy_data()
    ids = np.array(Image.open(ann(root)))
    ids[:4, :4] = 250  # not a class of the 11-class target, and not 255 (ignore)
    Image.fromarray(ids).save(ann(root))
    return (lambda: target_dataset(root)[3],
            [f'Label map {ann(root)} has ids outside the class list: 250 (16 pixels)',
             '0..10 (classes) and 255 (ignore)', 'Check that the file belongs to this data set'])


@case(ValueError)
def label_map_rgb_instead_of_ids(ctx):
    root = ctx.copy_data()
    ids = np.array(Image.open(ann(root))).astype(np.int64)
    rgb = np.stack([ids * 20 % 256, ids * 7 % 256, 255 - ids % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(ann(root))
    return (lambda: target_dataset(root)[3],
            [f'The label map {ann(root)} is a colour image (mode RGB)',
             'one channel of class ids', 'Convert colours to ids first'])


@case(FileNotFoundError)
def subset_file_missing(ctx):
    path = ctx.tmp / 'shots_7.txt'
    return (lambda: target_dataset(ctx.data, subset_file=path),
            [f'subset_file {path} does not exist', 'one image id'])


@case(ValueError)
def subset_file_lists_unknown_id(ctx):
    path = ctx.tmp / 'my_shots.txt'
    path.write_text('000001\n000999\n')
    return (lambda: target_dataset(ctx.data, subset_file=path),
            [f'subset_file {path} names 1 id(s)', '000999',
             str(ctx.data / 'target' / 'images' / 'train'), 'Fix or delete those lines'])


@case(ValueError)
def num_shots_larger_than_pool(ctx):
    return (lambda: target_dataset(ctx.data, num_shots=500),
            ['num_shots=500', str(ctx.data / 'target' / 'images' / 'train'),
             'holds only 30 images', 'use num_shots <= 30'])


@case(ValueError)
def num_shots_larger_than_subset_file(ctx):
    path = ctx.tmp / 'three.txt'
    path.write_text('000001\n000002\n000003\n')
    return (lambda: target_dataset(ctx.data, subset_file=path, num_shots=5),
            ['num_shots=5', f'subset_file {path} lists only 3 ids', 'lower num_shots'])


# ------------------------------------------------------------------------------ runs and outputs
@case(RuntimeError)
def work_dir_in_use(ctx):
    """A second training into the work dir of a live run."""
    import subprocess
    import sys as _sys
    owner = subprocess.Popen([_sys.executable, '-c', 'import time; time.sleep(60)'])
    work = ctx.tmp / 'work'
    work.mkdir()
    import socket
    (work / '.catgen.lock').write_text(json.dumps(dict(
        pid=owner.pid, host=socket.gethostname(), started=0, what='tools/train.py other.py')))

    def call():
        try:
            _tool('train').main(ctx.train_argv())
        finally:
            owner.kill()
    return call, [f'{work} is in use by process {owner.pid}', 'tools/train.py other.py',
                  'another --work-dir']


@case(ValueError)
def cfg_options_top_level_variable(ctx):
    argv = ctx.train_argv(extra=('data_root=/elsewhere',))
    return (lambda: _tool('train').main(argv),
            ["--cfg-options data_root=/elsewhere", 'changes nothing',
             'train_dataloader.dataset.data_root'])


@case(ValueError)
def cfg_options_max_iters_zero(ctx):
    argv = ctx.train_argv(extra=('train_cfg.max_iters=0',))
    return (lambda: _tool('train').main(argv), ['train_cfg.max_iters=0', 'must be positive'])


@case(ValueError)
def cfg_options_text_for_a_number(ctx):
    argv = ctx.train_argv(extra=('train_cfg.max_iters=abc',))
    return (lambda: _tool('train').main(argv), ["train_cfg.max_iters='abc'", 'give a number'])


@case(RuntimeError)
def load_from_checkpoint_of_another_class_count(ctx):
    from mmengine.config import Config

    from catgen.registry import MODELS
    from catgen.utils.config import fill_num_classes
    cfg = Config.fromfile(SOURCE_CONFIG)
    cfg.merge_from_dict(tiny_oasis_options(ctx.data, ctx.tmp / 'work'))
    fill_num_classes(cfg)
    cfg.model.data_preprocessor.num_classes = 12
    path = ctx.tmp / 'twelve.pth'
    torch.save({'meta': {}, 'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    argv = ctx.train_argv(extra=(f'load_from={path}',))
    return (lambda: _tool('train').main(argv), [str(path), 'do not fit', 'shape mismatches'])


@case(ValueError)
def synthesize_num_samples_zero(ctx):
    from catgen.apis.synthesize_folder import synthesize_folder
    return (lambda: synthesize_folder(None, ctx.tmp, ctx.tmp / 'out', num_samples=0),
            ['--num-samples must be >= 1', 'got 0'])


@case(NotADirectoryError)
def synthesize_out_is_a_file(ctx):
    from catgen.apis.synthesize_folder import synthesize_folder
    out = ctx.tmp / 'samples.png'
    out.write_bytes(b'not a folder')
    return (lambda: synthesize_folder(None, ctx.tmp, out),
            [f'--out {out} is an existing file', 'Pass a folder'])


@case(ValueError)
def tools_test_none_on_a_trained_model(ctx):
    return (lambda: _tool('test').main([SOURCE_CONFIG, 'none', *ctx.options()]),
            ['random initial weights', '"none" is only for training-free strategies'])


# ------------------------------------------------------------------------------ checkpoints
@case(FileNotFoundError)
def checkpoint_missing(ctx):
    path = ctx.tmp / 'work_dirs' / 'iter_1000.pth'
    return (lambda: _tool('test').main([SOURCE_CONFIG, str(path)]),
            [f'checkpoint {path} does not exist', 'tools/train.py'])


def _mismatch_case(ctx, source_model, source_name):
    from catgen.utils.checkpoint import load_state_dict_checked, safe_load
    path = ctx.tmp / source_name
    torch.save({'state_dict': source_model.state_dict()}, path)
    model = tiny_generator('OASISGenerator', 12)
    return lambda: load_state_dict_checked(model, safe_load(path)['state_dict'],
                                           source=str(path))


@case(RuntimeError)
def checkpoint_of_another_architecture(ctx):
    call = _mismatch_case(ctx, tiny_generator('SPADEGenerator', 12), 'spade.pth')
    return (call, [f'The weights from {ctx.tmp / "spade.pth"} do not fit OASISGenerator',
                   'missing keys (in the model, not in the checkpoint)',
                   'unexpected keys (in the checkpoint, not in the model)', 'head_0.',
                   'What to do', 'model type'])


@case(RuntimeError)
def checkpoint_of_another_class_count(ctx):
    # a 21-channel (source) generator loaded into a 12-channel (target) one; fc reads the
    # label map and the noise: 21 + 4 vs 12 + 4 input channels
    call = _mismatch_case(ctx, tiny_generator('OASISGenerator', 21), 'source21.pth')
    return (call, [f'The weights from {ctx.tmp / "source21.pth"} do not fit OASISGenerator',
                   'shape mismatches (checkpoint vs model)',
                   'fc.weight: checkpoint [16, 25, 3, 3] vs model [16, 16, 3, 3]',
                   'num_classes, which counts the don\'t-care channel'])


class _Payload:
    """Unpickling it would create ``marker`` (through os.system)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@case(Exception)  # UnsafeCheckpointError, an UnpicklingError
def checkpoint_malicious_pickle(ctx):
    import pickle

    from catgen.utils.checkpoint import UnsafeCheckpointError, safe_load
    path, marker = ctx.tmp / 'evil.pth', ctx.tmp / 'PWNED'
    torch.save({'state_dict': {}, 'meta': _Payload(marker)}, path)

    def call():
        try:
            safe_load(path)
        finally:
            assert not marker.exists(), 'the payload ran'
    ctx.check_type = (UnsafeCheckpointError, pickle.UnpicklingError)
    return call, [f"Refused to load checkpoint '{path}'", 'posix.system', 'nothing outside the '
                  'allowlist was run', 'What to do', 'Never load it with weights_only=False']


@case(Exception)  # UnsafeCheckpointError, an UnpicklingError
def resume_from_malicious_checkpoint(ctx):
    import pickle

    from catgen.utils.checkpoint import UnsafeCheckpointError
    path, marker = ctx.tmp / 'evil.pth', ctx.tmp / 'PWNED'
    torch.save({'state_dict': {}, 'meta': _Payload(marker)}, path)
    argv = ctx.train_argv() + ['--resume', str(path)]

    def call():
        try:
            _tool('train').main(argv)
        finally:
            assert not marker.exists(), 'the payload ran'
    ctx.check_type = (UnsafeCheckpointError, pickle.UnpicklingError)
    return call, [f"Refused to load checkpoint '{path}'", 'posix.system',
                  'Never load it with weights_only=False']


@case(KeyError)
def zoo_name_unknown(ctx):
    argv = [SOURCE_CONFIG, 'zoo://oasis_synthscenes-sourse', *ctx.options()]
    return (lambda: _tool('test').main(argv),
            ["No model 'oasis_synthscenes-sourse' in catgen's model zoo", 'the zoo has:',
             'docs/model_zoo.md'])


@case(RuntimeError)
def zoo_file_modified(ctx):
    from catgen.model_zoo import zoo
    weights, manifest = ctx.tmp / 'weights', ctx.tmp / 'zoo.json'
    weights.mkdir()
    (weights / 'tiny.pth').write_bytes(b'not the file that was exported')
    manifest.write_text(json.dumps({'models': {'tiny': {'file': 'tiny.pth', 'sha256': '0' * 64}}}))
    ctx.check_type = zoo.ZooChecksumError
    return (lambda: zoo.resolve_checkpoint('zoo://tiny', zoo_dir=str(weights),
                                           manifest=str(manifest)),
            ['zoo://tiny', 'the manifest', 'expects ' + '0' * 64, 'refuses to load it',
             'git checkout --'])


@case(RuntimeError)
def checkpoint_truncated(ctx):
    from catgen.utils.checkpoint import CorruptCheckpointError, safe_load
    path = ctx.tmp / 'iter_2.pth'
    torch.save({'state_dict': tiny_generator().state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    ctx.check_type = CorruptCheckpointError
    return (lambda: safe_load(path),
            [f"Cannot read checkpoint '{path}'", 'truncated', 'torch says',
             'an earlier iter_*.pth', 'copy the file again'])


@case(RuntimeError)
def checkpoint_empty_file(ctx):
    from catgen.utils.checkpoint import CorruptCheckpointError, safe_load
    path = ctx.tmp / 'iter_4.pth'
    path.write_bytes(b'')
    ctx.check_type = CorruptCheckpointError
    return (lambda: safe_load(path),
            [f"Cannot read checkpoint '{path}' (0 bytes)", 'EOFError', 'copy the file again'])


@case(Exception)
def checkpoint_with_garbage_pickle(ctx):
    import pickle

    from catgen.utils.checkpoint import UnsafeCheckpointError, safe_load
    path = ctx.tmp / 'scrambled.pth'
    path.write_bytes(b'\x80\x02}q\x00X\x01\x00\x00\x00aq\x01\xff\xfe\xfd garbage')
    ctx.check_type = (UnsafeCheckpointError, pickle.UnpicklingError)
    return (lambda: safe_load(path),
            [f"Cannot load checkpoint '{path}' safely", 'Unsupported operand 255',
             'corrupt or not a PyTorch checkpoint', 'nothing in it was run', 'copy it again'])


@case(RuntimeError)
def checkpoint_not_a_torch_file(ctx):
    from catgen.utils.checkpoint import CorruptCheckpointError, safe_load
    path = ctx.tmp / 'notes.pth'
    path.write_text('just some notes, not weights\n')
    ctx.check_type = CorruptCheckpointError
    return (lambda: safe_load(path),
            [f"Cannot read checkpoint '{path}' (29 bytes)", 'not a PyTorch checkpoint',
             'copy the file again'])


# ---------------------------------------------------------------------------------- affinity
@case(FileNotFoundError)
def affinity_file_missing(ctx):
    from catgen.affinity import FromFileAffinity
    path = ctx.tmp / 'affinity' / 'text.json'
    return (lambda: FromFileAffinity(str(path)).estimate(TARGET, SOURCE),
            [f'No affinity matrix at {path}', 'tools/estimate_affinity.py'])


@case(FileNotFoundError)
def affinity_file_missing_in_estimate_affinity_tool(ctx):
    path = ctx.tmp / 'affinity' / 'old.json'
    argv = ['--estimator', 'file', '--matrix', str(path), '--target-classes', ','.join(TARGET),
            '--source-classes', ','.join(SOURCE), '--out', str(ctx.tmp / 'out')]
    return (lambda: _tool('estimate_affinity').main(argv),
            [f'No affinity matrix at {path}', 'Estimate one with tools/estimate_affinity.py'])


@case(ValueError)
def affinity_wrong_shape(ctx):
    from catgen.affinity import AffinityMatrix
    path = affinity_json(ctx, 'transposed', values=np.array(A).T.tolist())
    return (lambda: AffinityMatrix.load(path),
            [f'Affinity file {path}', 'shape (4, 3) but the names give (3, 4)',
             'Rows are target classes', 'transpose'])


@case(ValueError)
def affinity_rows_are_not_the_target_classes(ctx):
    """CAT with a matrix made for 3 target classes on a 4-class target."""
    from catgen.registry import MODELS
    from transfer.tiny_oasis import save_source, synth_cfg
    source = save_source(ctx.tmp / 'source.pth', n=len(SOURCE) + 1)
    path = affinity_json(ctx, 'three_rows')
    target = TARGET + ['beach']
    cfg = synth_cfg(len(SOURCE) + 1, dict(
        type='CAT', source_checkpoint=source, affinity_file=str(path), target_classes=target,
        source_classes=SOURCE))
    cfg['data_preprocessor']['num_classes'] = len(target) + 1
    cfg['generator'] = dict(type='AffinityInputGenerator', generator=cfg['generator'])
    cfg['discriminator'].pop('num_classes')
    return (lambda: MODELS.build(cfg),
            [f'Affinity file {path} was made for other classes', "missing ['beach']",
             'Re-estimate the matrix for these classes'])


@case(ValueError)
def affinity_with_nan(ctx):
    from catgen.affinity import AffinityMatrix
    path = ctx.tmp / 'nan.json'
    affinity_json(ctx, 'nan')
    path.write_text(path.read_text().replace('[0.0, 0.9, 0.1, 0.0]', '[NaN, 0.9, 0.1, 0.0]'))
    return (lambda: AffinityMatrix.load(path),
            [f'Affinity file {path}', "rows of ['lawn'] contain NaN or inf",
             're-estimate the matrix'])


@case(ValueError)
def affinity_with_negative_entries(ctx):
    from catgen.affinity import AffinityMatrix
    path = affinity_json(ctx, 'negative', values=[[-0.2, 1.1, 0.1, 0.0]] + A[1:])
    return (lambda: AffinityMatrix.load(path),
            [f'Affinity file {path}', "rows of ['lawn'] have negative entries (min -0.2)",
             'probability distributions'])


@case(ValueError)
def affinity_rows_not_summing_to_one(ctx):
    from catgen.affinity import AffinityMatrix
    path = affinity_json(ctx, 'unnormalised', values=A[:2] + [[0.0, 0.2, 0.0, 0.5]])
    return (lambda: AffinityMatrix.load(path),
            [f'Affinity file {path}', 'rows must sum to 1', "'forest': 0.7", 'Normalise them'])


@case(ValueError)
def affinity_for_other_class_names(ctx):
    from catgen.affinity import FromFileAffinity
    path = affinity_json(ctx, 'other')
    return (lambda: FromFileAffinity(str(path)).estimate(['lawn', 'lake', 'sand'], SOURCE),
            [f'Affinity file {path} was made for other classes', "missing ['sand']",
             "unexpected ['forest']", 'Re-estimate the matrix for these classes'])


@case(ValueError)
def affinity_json_syntax_error(ctx):
    from catgen.affinity import AffinityMatrix
    path = affinity_json(ctx, 'edited')
    path.write_text(path.read_text()[:-20])
    return (lambda: AffinityMatrix.load(path),
            [f'Cannot parse the affinity file {path} as JSON', 'Fix the hand edit'])


@case(ValueError)
def affinity_not_an_affinity_file(ctx):
    from catgen.affinity import AffinityMatrix
    path = ctx.tmp / 'classes.json'
    path.write_text(json.dumps({'classes': TARGET}))
    return (lambda: AffinityMatrix.load(path),
            [f'{path} is not a catgen affinity matrix', "expected 'catgen.AffinityMatrix'",
             'tools/estimate_affinity.py'])


# ------------------------------------------------------------------------ pretrained weights
@case(FileNotFoundError)
def vgg_loss_weights_missing(ctx):
    from catgen.registry import MODELS
    path = ctx.tmp / 'checkpoints' / 'vgg19-dcbb9e9d.pth'
    return (lambda: MODELS.build(dict(type='VGGPerceptualLoss', weights_path=str(path))),
            [f'VGG19 weights for the perceptual loss not found at {str(path)!r}',
             'vgg19-dcbb9e9d.pth', 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth',
             'turn the VGG loss off'])


@case(FileNotFoundError)
def text_model_weights_missing(ctx):
    path = ctx.tmp / 'checkpoints' / 'open_clip' / 'ViT-B-32.bin'
    argv = ['--estimator', 'text', '--backend', 'open_clip', '--model-name', 'ViT-B-32',
            '--checkpoint', str(path), '--target-classes', ','.join(TARGET),
            '--source-classes', ','.join(SOURCE), '--out', str(ctx.tmp / 'out'), '--no-cache']
    return (lambda: _tool('estimate_affinity').main(argv),
            [f'open_clip checkpoint {path} does not exist', 'ViT-B-32', f'put it at {path}'])


# ---------------------------------------------------------- known gaps (fixes outside reach)
@case(FileNotFoundError)
def resume_from_missing_checkpoint(ctx):
    path = ctx.tmp / 'work' / 'iter_500.pth'
    argv = ctx.train_argv() + ['--resume', str(path)]
    return lambda: _tool('train').main(argv), [str(path), 'does not exist']


@case(FileNotFoundError)
def resume_with_empty_work_dir(ctx):
    argv = ctx.train_argv() + ['--resume']
    return lambda: _tool('train').main(argv), [str(ctx.tmp / 'work'), 'checkpoint']


@case(RuntimeError)
def tools_test_with_checkpoint_of_another_width(ctx):
    from catgen.registry import MODELS
    from mmengine.config import Config
    from catgen.utils.config import fill_num_classes
    cfg = Config.fromfile(SOURCE_CONFIG)
    cfg.merge_from_dict(tiny_oasis_options(ctx.data, ctx.tmp / 'work'))
    fill_num_classes(cfg)
    cfg.model.generator.base_channels = 8  # the config below says 4
    path = ctx.tmp / 'wide.pth'
    torch.save({'meta': {'iter': 1}, 'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    argv = [SOURCE_CONFIG, str(path), *ctx.options()]
    return lambda: _tool('test').main(argv), [str(path), 'do not fit', 'shape mismatches']


# --------------------------------------------------------------------------------- the test
def test_catalogue_has_at_least_15_cases_and_the_docs_list_them_all():
    assert len([c for c in CASES if not any(m.name == 'xfail' for m in c.marks)]) >= 15
    assert len({c.id for c in CASES}) == len(CASES)
    docs = (ROOT / 'docs' / 'troubleshooting.md').read_text()
    unlisted = [c.id for c in CASES if c.id not in docs]
    assert not unlisted, f'docs/troubleshooting.md does not list {unlisted}'


@pytest.mark.parametrize('make,exc', CASES)
def test_bad_input_is_explained(make, exc, tiny_synthscenes, tmp_path):
    ctx = Ctx(tmp=tmp_path, data=Path(tiny_synthscenes))
    call, needles = make(ctx)
    with pytest.raises(exc) as info:
        call()
    if ctx.check_type is not None:
        assert isinstance(info.value, ctx.check_type), type(info.value)
    # KeyError's str() is the repr of its message
    message = info.value.args[0] if isinstance(info.value, KeyError) else str(info.value)
    missing = [n for n in needles if n not in message]
    assert not missing, f'message lacks {missing}:\n{message}'
