import numpy as np
import pytest
import torch

from catgen.apis import init_synthesizer, label_to_onehot, load_inference_config, synthesize
from catgen.registry import MODELS

CONFIG = 'configs/oasis/oasis_synthscenes-source.py'
# the class count written explicitly (21 source channels): no data is needed to build the model
TINY = {'model.generator.base_channels': 4, 'model.generator.spade_hidden': 8,
        'model.generator.z_dim': 4, 'model.discriminator.base_channels': 2,
        'model.data_preprocessor.num_classes': 21}


def test_label_to_onehot_ignore_and_errors():
    label = torch.tensor([[[0, 2], [255, 1]]])
    onehot = label_to_onehot(label, 3)
    assert onehot.shape == (1, 3, 2, 2)
    assert onehot[0, :, 1, 0].sum() == 0 and onehot[0, 2, 0, 1] == 1
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        label_to_onehot(torch.tensor([[[7]]]), 3)


def saved_model(path):
    """A freshly built model of CONFIG (tiny) saved as a checkpoint at ``path``."""
    torch.manual_seed(0)
    model = MODELS.build(load_inference_config(CONFIG, TINY).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def test_init_and_synthesize_are_seeded(tmp_path):
    model = init_synthesizer(CONFIG, saved_model(tmp_path / 'm.pth'), cfg_options=TINY)
    label = np.random.default_rng(0).integers(1, 21, (64, 64))
    a = synthesize(model, label, num_samples=2, seed=3)
    b = synthesize(model, label, num_samples=2, seed=3)
    assert a.shape == (2, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a[0], a[1])
    # a checkpoint round trip reproduces the same images
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'm.pth')
    again = init_synthesizer(CONFIG, str(tmp_path / 'm.pth'), cfg_options=TINY)
    assert np.array_equal(synthesize(again, label, num_samples=2, seed=3), a)


def test_checkpoint_of_another_architecture_is_explained(tmp_path):
    saved_model(tmp_path / 'm.pth')
    other = dict(TINY, **{'model.generator.base_channels': 8})
    with pytest.raises(Exception, match='shape'):
        init_synthesizer(CONFIG, str(tmp_path / 'm.pth'), cfg_options=other)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        init_synthesizer(CONFIG, str(tmp_path / 'absent.pth'), cfg_options=TINY)


def test_no_checkpoint_is_refused_for_a_model_that_needs_training():
    with pytest.raises(ValueError, match='random initial weights'):
        init_synthesizer(CONFIG, None, cfg_options=TINY)


def tiny_spade(use_vae=True, instance_edges=False, n=5, size=32):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='SPADESynthesizer', ema_momentum=None,
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n,
                               instance_edges=instance_edges),
        generator=dict(type='SPADEGenerator', base_channels=2, crop_size=size, spade_hidden=8,
                       use_vae=use_vae, z_dim=8, encoder=dict(type='SPADEEncoder',
                                                              input_size=16)))).eval()


def test_synthesize_with_a_style_image():
    from catgen.apis.inference import read_style_image
    model = tiny_spade()
    label = np.random.default_rng(0).integers(1, 5, (32, 32))
    style = np.random.default_rng(1).integers(0, 256, (40, 24, 3)).astype(np.uint8)
    a = synthesize(model, label, num_samples=2, seed=3, style_image=style)
    assert a.shape == (2, 32, 32, 3) and np.array_equal(
        a, synthesize(model, label, num_samples=2, seed=3, style_image=style))
    t = read_style_image(style)
    assert t.shape == (1, 3, 40, 24) and t.min() >= -1 and t.max() <= 1
    assert torch.allclose(t[0, :, 0, 0], torch.from_numpy(style[0, 0]).float() / 127.5 - 1)
    # the images are those of the synthesizer with the encoded style
    seg = label_to_onehot(torch.as_tensor(label)[None], 5)
    ids = [3 * 1_000_003]
    from catgen.models.synthesizers.base_synthesizer import to_uint8
    hand = to_uint8(model.synthesize(seg, sample_ids=ids, style=t))[0].permute(1, 2, 0).numpy()
    assert np.array_equal(a[0], hand)
    assert not np.array_equal(a, synthesize(model, label, num_samples=2, seed=3))  # random
    with pytest.raises(ValueError, match='no style encoder'):
        synthesize(tiny_spade(use_vae=False), label, style_image=style)


def test_synthesize_gives_edges_to_a_model_that_reads_them():
    from catgen.apis.inference import label_edges
    from catgen.datasets.transforms.loading import instance_edges
    model = tiny_spade(use_vae=False, instance_edges=True)
    label = np.zeros((32, 32), np.int64)
    label[:, 16:] = 2
    inst = label.copy()
    inst[10:20, 20:30] = 7  # a second instance inside class 2
    # without instance maps, the label map's class boundaries are the edges
    assert torch.equal(label_edges(torch.as_tensor(label)[None])[0, 0],
                       torch.from_numpy(instance_edges(label)).float())
    assert torch.equal(label_edges(torch.as_tensor(label)[None], inst)[0, 0],
                       torch.from_numpy(instance_edges(inst)).float())
    seen = []
    real = model.synthesize

    def spy(seg, **kw):
        seen.append(seg)
        return real(seg, **kw)
    model.synthesize = spy
    assert synthesize(model, label).shape == (1, 32, 32, 3)
    synthesize(model, label, instance=inst)
    assert seen[0].shape == (1, 5 + 1, 32, 32)  # one-hot classes, then the edge channel
    assert torch.equal(seen[0][0, :5], label_to_onehot(torch.as_tensor(label)[None], 5)[0])
    assert torch.equal(seen[0][0, 5], torch.from_numpy(instance_edges(label)).float())
    assert torch.equal(seen[1][0, 5], torch.from_numpy(instance_edges(inst)).float())
    with pytest.raises(ValueError, match='same size'):
        synthesize(model, label, instance=inst[:16])


def test_tools_synthesize_style(tmp_path):
    """tools/synthesize.py --style IMAGE: every output takes the style of IMAGE."""
    from PIL import Image

    from tools.synthesize import main
    opts = {'model.data_preprocessor.num_classes': 151, 'model.generator.base_channels': 2,
            'model.generator.spade_hidden': 8, 'model.generator.use_vae': True,
            'model.generator.z_dim': 8, 'model.generator.crop_size': 32,
            'model.generator.encoder': dict(type='SPADEEncoder', input_size=16),
            'model.discriminator.base_channels': 2, 'model.discriminator.num_layers': 2}
    torch.manual_seed(0)
    cfg = load_inference_config('configs/spade/spade_ade20k.py', opts)
    model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'm.pth')
    (tmp_path / 'labels').mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 151, (32, 32)).astype(np.uint8)).save(
        tmp_path / 'labels' / 'a.png')
    style = tmp_path / 'style.png'
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(
        style)
    args = ['configs/spade/spade_ade20k.py', str(tmp_path / 'm.pth'), '--labels',
            str(tmp_path / 'labels'), '--cfg-options'] + [f'{k}={v}' for k, v in opts.items()
                                                          if k != 'model.generator.encoder']
    args += ['model.generator.encoder.type=SPADEEncoder', 'model.generator.encoder.input_size=16']
    main(args + ['--out', str(tmp_path / 'styled'), '--style', str(style)])
    main(args + ['--out', str(tmp_path / 'random')])
    styled = np.asarray(Image.open(tmp_path / 'styled' / 'a.png'))
    assert styled.shape == (32, 32, 3)
    assert not np.array_equal(styled, np.asarray(Image.open(tmp_path / 'random' / 'a.png')))
    # a model without a style encoder refuses --style
    plain = {k: v for k, v in opts.items() if 'use_vae' not in k and 'encoder' not in k}
    model = MODELS.build(load_inference_config('configs/spade/spade_ade20k.py', plain).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'plain.pth')
    with pytest.raises(SystemExit, match='no style encoder'):
        main(['configs/spade/spade_ade20k.py', str(tmp_path / 'plain.pth'), '--labels',
              str(tmp_path / 'labels'), '--out', str(tmp_path / 'x'), '--style', str(style),
              '--cfg-options'] + [f'{k}={v}' for k, v in plain.items()])
