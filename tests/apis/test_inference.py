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
