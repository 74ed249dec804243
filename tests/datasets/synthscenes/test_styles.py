"""The restyled SynthScenes domains (night, sketch) of the unconditional few-shot setting."""
import json
import sys

import numpy as np
import pytest
from PIL import Image

from catgen.datasets.synthscenes import generate_scene
from catgen.datasets.synthscenes.styles import (INK, PAPER, STYLE_SEED_OFFSET, restyle,
                                                styled_scene, write_styles)


def test_night_by_hand():
    img = np.array([[[255, 128, 0]]], np.uint8)
    out = restyle(img, np.zeros((1, 1), np.uint8), 'night')
    f = np.array([1.0, 128 / 255, 0.0]) ** 1.8 * np.array([0.45, 0.55, 1.0]) * 0.7
    assert np.array_equal(out[0, 0], np.round(f * 255).astype(np.uint8))


def test_sketch_draws_boundaries_and_hatching():
    label = np.zeros((6, 6), np.uint8)
    label[:, 3:] = 1
    white = np.full((6, 6, 3), 255, np.uint8)
    out = restyle(white, label, 'sketch')
    assert (out[:, 2] == INK).all() and (out[:, 0] == PAPER).all()  # boundary, light: no hatch
    dark = restyle(np.zeros((6, 6, 3), np.uint8), np.zeros((6, 6), np.uint8), 'sketch')
    assert (dark[0, 0] == INK).all() and (dark[0, 1] == PAPER).all()  # every 2nd diagonal
    with pytest.raises(ValueError, match='unknown style'):
        restyle(white, label, 'watercolour')


def test_styled_scenes_are_new_source_scenes():
    img, label = generate_scene('source', 'train', 3, STYLE_SEED_OFFSET)
    assert np.array_equal(styled_scene('night', 'train', 3), restyle(img, label, 'night'))
    src, _ = generate_scene('source', 'train', 3, 0)
    assert not np.array_equal(img, src)  # not a source training image


def test_write_styles_is_idempotent(tmp_path):
    out, written = write_styles(tmp_path / 'styles', num_train=3, num_val=2)
    assert written
    for style in ('night', 'sketch'):
        assert sorted(p.name for p in (out / style / 'images' / 'train').iterdir()) == [
            '000000.png', '000001.png', '000002.png']
        img = np.asarray(Image.open(out / style / 'images' / 'val' / '000001.png'))
        assert np.array_equal(img, styled_scene(style, 'val', 1))
    assert json.loads((out / 'settings.json').read_text())['num_train'] == 3
    assert write_styles(tmp_path / 'styles', num_train=3, num_val=2) == (out, False)
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'mine.txt').write_text('keep')
    with pytest.raises(FileExistsError):
        write_styles(tmp_path / 'other', num_train=1, num_val=1)


def test_tool(tmp_path, capsys):
    sys.path.insert(0, 'tools')
    from prepare_synthscenes_styles import main
    assert main(['--out', str(tmp_path / 's'), '--num-train', '2', '--num-val', '1',
                 '--styles', 'night']) == 0
    assert (tmp_path / 's' / 'night' / 'images' / 'val' / '000000.png').is_file()
    assert 'wrote' in capsys.readouterr().out
