"""Environment set-up: default scope handling and loading an mmseg segmentor safely."""
import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

from catgen.utils.checkpoint import CheckpointMismatchError
from catgen.utils.setup_env import (guarded_default_scope, init_mmseg_model, set_default_scope,
                                    setup_env)


def _scope():
    current = DefaultScope.get_current_instance()
    return current.scope_name if current is not None else None


@pytest.fixture
def scopes_restored():
    """Leave MMEngine's DefaultScope registry as this test found it."""
    saved = list(DefaultScope._instance_dict.items())
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


def switches_to_mmseg():
    """What mmseg.apis.init_model does to the global default scope."""
    init_default_scope('mmseg')
    return _scope()


def test_setup_env_sets_catgen_scope_idempotently(scopes_restored):
    from catgen.utils.mmcv_ops_compat import is_compat_installed
    setup_env()
    assert _scope() == 'catgen'
    count = len(DefaultScope._instance_dict)
    setup_env()
    set_default_scope('catgen')
    assert len(DefaultScope._instance_dict) == count  # no instance piles up
    import mmcv.ops  # the compiled one, or catgen's stand-in where it cannot load
    assert is_compat_installed() or not hasattr(mmcv.ops, '__catgen_mmcv_ops_compat__')
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = torch.serialization.get_safe_globals()
    assert (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer') in allowed


def test_guard_restores_scope_after_a_function_that_switches_it(scopes_restored):
    set_default_scope('catgen')
    before = DefaultScope.get_current_instance()
    with guarded_default_scope():
        assert switches_to_mmseg() == 'mmseg'
    assert DefaultScope.get_current_instance() is before
    # also when the block raises, and from another scope
    set_default_scope('mmengine')
    with pytest.raises(RuntimeError, match='boom'):
        with guarded_default_scope('catgen'):
            assert _scope() == 'catgen'
            switches_to_mmseg()
            raise RuntimeError('boom')
    assert _scope() == 'mmengine'
    # after catgen's scope is back, a second switch to mmseg is guarded as well
    set_default_scope('catgen')
    with guarded_default_scope(None):
        switches_to_mmseg()
        switches_to_mmseg()
    assert _scope() == 'catgen'


def _tiny_fcn(num_classes):
    norm = dict(type='BN', requires_grad=True)
    return dict(
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', size=(32, 32),
                                   mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                   bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
            backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=4,
                          num_stages=4, out_indices=(3,), dilations=(1, 1, 1, 1),
                          strides=(1, 2, 2, 2), norm_cfg=norm, contract_dilation=True),
            decode_head=dict(type='FCNHead', in_channels=32, in_index=0, channels=8,
                             num_convs=1, concat_input=False, dropout_ratio=0.0,
                             num_classes=num_classes, norm_cfg=norm, align_corners=False,
                             loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        default_scope='mmseg')


def test_init_mmseg_model_loads_safely_and_keeps_catgen_scope(tmp_path, scopes_restored):
    from mmengine.config import Config
    setup_env()
    with guarded_default_scope(None):  # build a "trained" segmentor the plain mmseg way
        from mmseg.apis import init_model
        source = init_model(Config(_tiny_fcn(num_classes=4)), device='cpu')
    assert _scope() == 'catgen'
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    meta = {'dataset_meta': {'classes': ('sky', 'tree', 'road', 'car'),
                             'palette': [[0, 0, 255], [0, 255, 0], [128, 128, 128], [255, 0, 0]]}}
    ckpt = tmp_path / 'fcn_tiny.pth'
    torch.save({'state_dict': source.state_dict(), 'meta': meta}, ckpt)

    model = init_mmseg_model(_tiny_fcn(num_classes=4), ckpt, device='cpu')
    assert _scope() == 'catgen'
    assert not model.training
    assert model.dataset_meta == meta['dataset_meta']
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x, mode='tensor')
        assert logits.shape[:2] == (1, 4)
        assert torch.allclose(logits, source.eval()(x, mode='tensor'))

    # a checkpoint for another class count is refused with keys and shapes
    with pytest.raises(CheckpointMismatchError, match=r'decode_head\.conv_seg\.weight: checkpoint '
                                                      r'\[4, 8, 1, 1\] vs model \[7, 8, 1, 1\]'):
        init_mmseg_model(_tiny_fcn(num_classes=7), ckpt)
    assert _scope() == 'catgen'


def test_init_mmseg_model_missing_checkpoint_says_where_to_put_it(tmp_path):
    missing = tmp_path / 'weights' / 'deeplabv3_ade20k.pth'
    with pytest.raises(FileNotFoundError) as info:
        init_mmseg_model('configs/some_mmseg_config.py', missing)
    msg = str(info.value)
    assert str(missing) in msg and 'put the .pth file' in msg
    assert 'configs/some_mmseg_config.py' in msg
