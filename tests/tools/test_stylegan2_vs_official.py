"""tools/benchmarks/stylegan2_vs_official.py end to end, against a stand-in for the official code.

catgen never ships rosinality/stylegan2-pytorch, so the test writes a small package with its
layout and API: ``op/__init__.py`` builds a CUDA extension at import (as the official one does;
the tool must stub ``torch.utils.cpp_extension.load``) and ``model.py`` has ``Generator(size,
style_dim, n_mlp, channel_multiplier)`` and ``Discriminator(size, channel_multiplier)``, made of
catgen's networks (a narrow channel table, the blur kernels saved in the state dict as the
official code does) behind the official call signature (styles list, ``noise``,
``randomize_noise``, ``inject_index``, ``truncation`` only below 1, ``truncation_latent``,
``input_is_latent``, ``return_latents``; each style mapped on its own, then mixed). The tool must
find it equal and write the report; a stand-in that computes something else must be refused.
"""
import json
import os
import importlib.util
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'benchmarks', 'stylegan2_vs_official.py')

OP = '''
    from torch.utils.cpp_extension import load

    # the official op package compiles its CUDA kernels here; the tool must stub this out
    fused = load('fused', sources=['fused_bias_act.cpp', 'fused_bias_act_kernel.cu'])
    '''

MODEL = '''
    import random

    import torch

    from catgen.models.discriminators.stylegan2_discriminator import StyleGAN2Discriminator
    from catgen.models.generators.stylegan2_generator import StyleGAN2Generator, mix_latents
    from op import fused  # noqa: F401

    NARROW = dict(max_channels=8, channel_base=128)  # 8 channels, 4 at 32 px
    G_SCALE = 1.0
    D_SCALE = 1.0
    KERNEL_SCALE = 1.0
    IGNORE_NOISE = False


    def saved_kernels(module):
        """The official code saves its blur kernels (catgen does not)."""
        for m in module.modules():
            if 'kernel' in m._buffers:
                m._non_persistent_buffers_set.discard('kernel')
                m.kernel.mul_(KERNEL_SCALE)


    class Generator(StyleGAN2Generator):
        def __init__(self, size, style_dim, n_mlp, channel_multiplier=2,
                     blur_kernel=[1, 3, 3, 1], lr_mlp=0.01):
            super().__init__(size, style_dim, n_mlp, channel_multiplier, lr_mlp=lr_mlp,
                             blur_taps=blur_kernel, noise_mode='const', **NARROW)
            saved_kernels(self)

        def mean_latent(self, n_latent):
            return self.style(torch.randn(n_latent, self.style_dim)).mean(0, keepdim=True)

        def forward(self, styles, return_latents=False, inject_index=None, truncation=1,
                    truncation_latent=None, input_is_latent=False, noise=None,
                    randomize_noise=True):
            if not input_is_latent:
                styles = [self.style(s) for s in styles]
            if len(styles) > 1:
                if inject_index is None:
                    inject_index = random.randint(1, self.n_latent - 1)
                w = mix_latents(styles[0], styles[1], self.n_latent, inject_index)
            else:
                w = styles[0]
            if noise is None and randomize_noise or IGNORE_NOISE:
                noise = [None] * self.num_layers
            if IGNORE_NOISE:
                torch.manual_seed(123)
            img, w = super().forward(
                z=w, input_is_latent=True, noise=noise, return_latents=True,
                truncation=truncation if truncation < 1 else 1,
                truncation_latent=truncation_latent)
            return G_SCALE * img, (w if return_latents else None)


    class Discriminator(StyleGAN2Discriminator):
        def __init__(self, size, channel_multiplier=2, blur_kernel=[1, 3, 3, 1]):
            super().__init__(size, channel_multiplier, blur_taps=blur_kernel, **NARROW)
            saved_kernels(self)

        def forward(self, input):
            return D_SCALE * super().forward(input)
    '''


def make_official(root, **constants):
    (root / 'op').mkdir(parents=True, exist_ok=True)
    (root / 'op' / '__init__.py').write_text(textwrap.dedent(OP))
    text = textwrap.dedent(MODEL)
    for name, value in constants.items():
        default = 'False' if name == 'IGNORE_NOISE' else '1.0'
        text = text.replace(f'{name} = {default}\n', f'{name} = {value}\n')
    (root / 'model.py').write_text(text)
    return root


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('stylegan2_vs_official', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_tool(tool, capsys):
    """Run the tool in this process (the imports of torch and catgen dominate a subprocess):
    returns (exit message or None, stdout). The RNG state and the stand-in's modules are
    restored / removed afterwards."""
    import torch

    def run(official, out, *extra):
        argv = ['--official-dir', str(official), '--size', '16', '--style-dim', '16',
                '--threads', '0', '--out', str(out), *extra]
        with torch.random.fork_rng():
            try:
                tool.main(argv)
                error = None
            except SystemExit as e:
                error = str(e.code)
        return error, capsys.readouterr().out

    yield run
    for name in [m for m in sys.modules if m in ('model', 'op') or m.startswith('op.')]:
        del sys.modules[name]


def test_matches_a_faithful_stand_in(tmp_path, run_tool):
    official = make_official(tmp_path / 'stylegan2-pytorch')
    out = tmp_path / 'results' / 'report.json'
    error, stdout = run_tool(official, out)
    assert error is None, error
    report = json.loads(out.read_text())
    assert report['official_extensions_stubbed'] == ['fused']
    assert report['official_commit'] is None  # not a git checkout
    assert report['passed'] and report['bit_identical'] and report['not_bit_identical'] == []
    entry = report['sizes']['16']
    assert entry['channels'] == {'4': 8, '8': 8, '16': 8}
    assert entry['catgen_channel_config'] == dict(max_channels=8, channel_base=128)
    assert not entry['official_channel_table']
    # Blur in 2 upsampling convs and 2 ToRGB upsamplers; 2 blurs in each of 2 ResBlocks
    assert entry['blur_kernels_checked'] == 8
    checks = entry['checks']
    for name in ('mapping', 'mean_latent', 'generator', 'generator_stored_noise',
                 'generator_random_noise', 'truncation', 'per_layer_latents',
                 'style_mixing_w_1', 'style_mixing_w_3', 'style_mixing_w_5',
                 'returned_latents_w', 'discriminator_batch4', 'discriminator_batch8',
                 'generator_backward', 'generator_backward_mixing_w', 'discriminator_backward',
                 'discriminator_r1'):
        assert checks[name]['expect'] == 'bit-identical', name
        assert checks[name]['bit_identical'] and checks[name]['max_abs_diff'] == 0, name
    assert checks['generator']['shape'] == [2, 3, 16, 16]
    assert checks['discriminator_batch8']['shape'] == [8, 1]
    g = checks['generator_backward']
    assert g['n_tensors'] == g['n_bit_identical'] > 10 and g['differing'] == {}
    # the comparisons that only agree up to rounding are gated, not required to be exact
    for name in ('style_mixing_z_3', 'unfused_generator', 'generator_backward_mixing_z',
                 'unfused_generator_backward'):
        assert checks[name]['expect'].startswith('float rounding') and checks[name]['passed']
        assert checks[name + '_float64']['expect'].startswith('float64')
        assert checks[name + '_float64']['passed']
    assert checks['unfused_generator_backward']['metric'] == 'rel_l2_total'
    assert checks['unfused_generator_backward_float64']['metric'] == 'rel'
    assert report['tolerances']['float64_rtol'] == 1e-9
    design = entry['differences_by_design']
    assert design['truncation_above_1']['official_equals_psi_1'] is True
    assert design['truncation_above_1']['catgen'].startswith('raises ValueError')
    assert 'generator_backward' in stdout and 'written to' in stdout


def test_without_float64(tmp_path, run_tool):
    official = make_official(tmp_path / 'stylegan2-pytorch')
    out = tmp_path / 'report.json'
    error, _ = run_tool(official, out, '--no-float64', '--d-batch-size', '2')
    assert error is None, error
    report = json.loads(out.read_text())
    checks = report['sizes']['16']['checks']
    assert not [name for name in checks if name.endswith('_float64')]
    assert report['tolerances']['float64_rtol'] is None
    assert list(report['sizes']['16']['config']['d_batch_sizes']) == [2]
    assert checks['discriminator_batch2']['shape'] == [2, 1]
    assert 'discriminator_batch4' not in checks


@pytest.mark.parametrize('constant, value, check', [
    ('G_SCALE', '0.5', 'generator:'),
    ('D_SCALE', '0.5', 'discriminator_batch4:'),
    ('IGNORE_NOISE', 'True', 'generator:'),
])
def test_refuses_a_stand_in_that_computes_something_else(tmp_path, run_tool, constant, value,
                                                         check):
    official = make_official(tmp_path / 'stylegan2-pytorch', **{constant: value})
    out = tmp_path / 'report.json'
    error, stdout = run_tool(official, out)
    assert error and 'does not compute what the official code computes' in error
    assert f'size 16 {check}' in error and 'FAIL' in stdout
    assert not out.exists()


def test_refuses_other_blur_kernels(tmp_path, run_tool):
    official = make_official(tmp_path / 'stylegan2-pytorch', KERNEL_SCALE='2.0')
    error, _ = run_tool(official, tmp_path / 'report.json')
    assert error and "blur kernels differ from catgen's" in error
    assert 'convs.0.conv.blur.kernel' in error
    assert not (tmp_path / 'report.json').exists()


@pytest.mark.parametrize('layout, message', [
    (None, 'is not a directory'),
    ({}, 'model.py not found'),
    ({'model.py': 'x = 1\n'}, 'op/__init__.py not found'),
    ({'model.py': 'x = 1\n', 'op/__init__.py': ''}, 'defines no Generator class'),
    ({'model.py': 'import no_such_module\n', 'op/__init__.py': ''}, 'ModuleNotFoundError'),
])
def test_names_a_missing_or_invalid_checkout(tmp_path, run_tool, layout, message):
    official = tmp_path / 'nowhere'
    if layout is not None:
        official.mkdir()
        for rel, text in layout.items():
            (official / rel).parent.mkdir(parents=True, exist_ok=True)
            (official / rel).write_text(text)
    error, _ = run_tool(official, tmp_path / 'report.json')
    assert error and message in error and 'nowhere' in error
    if 'ModuleNotFoundError' not in message:
        assert 'rosinality/stylegan2-pytorch' in error
    assert not (tmp_path / 'report.json').exists()


def test_the_script_names_a_missing_checkout(tmp_path):
    """The command line itself (it stops before importing torch, so this is quick)."""
    out = tmp_path / 'report.json'
    proc = subprocess.run([sys.executable, TOOL, '--official-dir', str(tmp_path / 'nowhere'),
                           '--out', str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'nowhere' in proc.stderr and 'rosinality/stylegan2-pytorch' in proc.stderr
    assert not out.exists()
