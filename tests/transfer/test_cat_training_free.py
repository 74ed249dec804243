"""Training-free CAT: source weights + affinity layer, nothing trains; identity A = the source."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from catgen.affinity import AffinityMatrix
from catgen.registry import MODELS
from catgen.transfer.cat_training_free import CATTrainingFree  # noqa: F401 (registers)

REPO = Path(__file__).resolve().parents[2]
SIZE = 32
CLASSES = ['sky', 'grass', 'water', 'rock']


def synth_cfg(n, transfer=None, discriminator=True, wrap=False):
    gen = dict(type='OASISGenerator', num_classes=n, z_dim=4, base_channels=4,
               channel_multipliers=(4, 2, 1), crop_size=SIZE, spade_hidden=8)
    if wrap:  # CAT's architecture: the source generator behind the affinity layer
        gen = dict(type='AffinityInputGenerator', generator=gen)
    return dict(
        type='OASISSynthesizer', data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        generator=gen,
        discriminator=dict(type='OASISDiscriminator', base_channels=2,
                           channel_multipliers=(1, 2, 2)) if discriminator else None,
        ema_momentum=0.5, transfer=transfer)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """A tiny trained-looking source (EMA != G) saved in catgen's format, with an identity A."""
    torch.manual_seed(3)
    model = MODELS.build(synth_cfg(5))
    with torch.no_grad():  # make G and its EMA differ, as after training
        for p in model.generator.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.generator_ema.update_parameters(model.generator)
    model.generator_ema.update_parameters(model.generator)
    root = tmp_path_factory.mktemp('catfree')
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, root / 'source.pth')
    AffinityMatrix(np.eye(4), CLASSES, CLASSES).save(root / 'identity')
    return dict(model=model.eval(), ckpt=str(root / 'source.pth'),
                identity=str(root / 'identity.json'))


def build_free(source, tmp_path):
    transfer = dict(type='CATTrainingFree', source_checkpoint=source['ckpt'],
                    affinity_file=source['identity'], target_classes=CLASSES,
                    source_classes=CLASSES)
    return MODELS.build(synth_cfg(5, transfer, discriminator=False, wrap=True)).eval()


def test_identity_affinity_reproduces_the_source_output_exactly(source, tmp_path):
    free = build_free(source, tmp_path)
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (2, SIZE, SIZE), generator=g)
    seg = torch.nn.functional.one_hot(label, 5).permute(0, 3, 1, 2).float()
    z = torch.randn(2, 4, generator=g)
    expected = source['model'].synthesize(seg, z)
    out = free.synthesize(seg, z)
    assert torch.equal(out, expected)
    # the same through forward with per-sample noise (what val/test use)
    from catgen.structures import SISDataSample
    samples = [SISDataSample(metainfo=dict(sample_idx=i)) for i in range(2)]
    assert torch.equal(free(dict(seg=seg), samples, mode='tensor'),
                       source['model'](dict(seg=seg), samples, mode='tensor'))


def test_nothing_trains(source, tmp_path):
    free = build_free(source, tmp_path)
    assert type(free.transfer).requires_training is False
    assert not any(p.requires_grad for p in free.parameters())
    with pytest.raises(RuntimeError, match='tools/test.py CONFIG none'):
        free.optim_params('generator')


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'catgen_tool_{name}', REPO / 'tools' / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_and_synthesize_tools_run_on_it_with_checkpoint_none(tiny_synthscenes, tmp_path):
    """tools/test.py and tools/synthesize.py take CONFIG none for training-free CAT."""
    torch.manual_seed(0)
    gen = dict(base_channels=4, spade_hidden=8, z_dim=4)
    src = MODELS.build(dict(
        type='OASISSynthesizer', data_preprocessor=dict(type='SISDataPreprocessor',
                                                        num_classes=21),
        generator=dict(type='OASISGenerator', num_classes=21, crop_size=64,
                       channel_multipliers=(8, 4, 2, 1, 1), **gen), ema_momentum=1e-2))
    ckpt = tmp_path / 'source.pth'
    torch.save({'meta': {}, 'state_dict': src.state_dict()}, ckpt)
    root = str(tiny_synthscenes)
    cfg = tmp_path / 'free.py'
    cfg.write_text(f'''
_base_ = ['{REPO}/configs/cat/oasis_synthscenes-training-free.py']
model = dict(
    generator=dict(generator=dict(base_channels=4, spade_hidden=8, z_dim=4)),
    transfer=dict(
        source_checkpoint='{ckpt}',
        affinity=dict(_delete_=True, type='GroundTruthAffinity', classes_json='{root}'),
        source_classes=dict(data_root='{root}')))
train_dataloader = dict(dataset=dict(data_root='{root}', num_shots=25))
test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root='{root}'))
''')
    work = tmp_path / 'work'
    metrics = _tool('test.py').main([str(cfg), 'none', '--work-dir', str(work)])
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values())
    assert json.loads((work / 'metrics.json').read_text())
    assert (work / 'affinity.json').is_file() and (work / 'affinity.png').is_file()
    out = tmp_path / 'samples'
    _tool('synthesize.py').main([str(cfg), 'none', '--labels',
                                 f'{root}/target/annotations/val', '--out', str(out)])
    assert len(list(out.glob('*.png'))) == 8
