"""Periodic artefacts of generated images (stripes, grid lines), measured in the power spectrum.

A generator that draws thin stripes or grid lines puts energy at frequencies where real images
have little, mostly on the two axes of the 2-D spectrum (horizontal stripes: ``f_x = 0``;
vertical stripes: ``f_y = 0``). Upsampling and transposed-convolution artefacts show up the
same way (Durall et al., "Watch your up-convolution", CVPR 2020). FID and mIoU barely notice
them; this metric does.

Per image: the grey level (mean of R, G, B, in 0..1) minus its mean, times a 2-D Hann window
(so that the image border is not an edge), ``|FFT2|^2``. The power spectra are averaged over the
evaluation set, separately for the generated and the real images: ``P_fake(f)``, ``P_real(f)``.
Frequencies are in cycles per pixel; the high band is ``|f| >= cutoff`` (default 0.25: periods
of 4 pixels or less).

Metrics (prefix ``spectrum``):

- ``hf_ratio``: high-band energy of the generated images over that of the real ones (1: as
  much fine detail as real images; below: blurrier; well above: artefacts or noise);
- ``max_excess_db``: ``max_f 10 log10(P_fake(f) / P_real(f))`` over the high band: a periodic
  artefact makes a peak of many dB at its frequency;
- ``axis_excess_db``: the same over the high-band bins on the two axes, where axis-aligned
  stripes and grid lines put their energy.
"""
import numpy as np
from mmengine.evaluator import BaseMetric

from catgen.registry import METRICS

from .appearance_distance import sample_images


def power_spectrum(img):
    """Windowed power spectrum of one image.

    Args:
        img: ``uint8`` (or float in 0..255) ``[3, H, W]`` RGB.

    Returns:
        ``float64[H, W]``, zero frequency at ``[0, 0]`` (``numpy.fft`` order).
    """
    grey = np.asarray(img, dtype=np.float64).mean(0) / 255.0
    grey = grey - grey.mean()
    h, w = grey.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    return np.abs(np.fft.fft2(grey * window)) ** 2


def band_masks(h, w, cutoff):
    """``(high, axis)`` bool masks ``[H, W]`` in ``numpy.fft`` order: ``|f| >= cutoff`` cycles
    per pixel, and the high-band bins with ``f_x = 0`` or ``f_y = 0``."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    high = np.sqrt(fy ** 2 + fx ** 2) >= cutoff
    axis = high & ((fy == 0) | (fx == 0))
    return high, axis


def spectral_artifact_scores(fake_power, real_power, cutoff=0.25, eps=1e-12):
    """The metric's values from the two mean power spectra (both ``float[H, W]``, numpy.fft
    order). Returns a dict ``hf_ratio``, ``max_excess_db``, ``axis_excess_db``."""
    high, axis = band_masks(*fake_power.shape, cutoff)
    if not high.any():
        raise ValueError(f'no frequency reaches cutoff={cutoff} on a {fake_power.shape} image '
                         f'(the highest is 0.71 cycles/pixel); use a cutoff below 0.7')
    excess = 10 * np.log10((fake_power + eps) / (real_power + eps))
    return dict(hf_ratio=float(fake_power[high].sum() / max(real_power[high].sum(), eps)),
                max_excess_db=float(excess[high].max()),
                axis_excess_db=float(excess[axis].max()))


@METRICS.register_module()
class SpectralArtifacts(BaseMetric):
    """Periodic artefacts: generated against real power spectra (see the module docstring).

    Args:
        cutoff: lower edge of the high band, in cycles per pixel (0 < cutoff < 0.7).
        prefix: metric name prefix.
        collect_device: 'cpu' or 'gpu' for gathering results across processes.
    """

    default_prefix = 'spectrum'

    def __init__(self, cutoff=0.25, prefix=None, collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < float(cutoff) < 0.7:
            raise ValueError(f'cutoff must be in (0, 0.7) cycles per pixel, got {cutoff}')
        self.cutoff = float(cutoff)

    def process(self, data_batch, data_samples):
        """One result per batch: the summed spectra of its generated and real images."""
        fake_sum = real_sum = None
        for ds in data_samples:
            (fake, real), _ = sample_images(ds)
            pf, pr = power_spectrum(fake), power_spectrum(real)
            fake_sum = pf if fake_sum is None else fake_sum + pf
            real_sum = pr if real_sum is None else real_sum + pr
        if fake_sum is not None:
            self.results.append(dict(fake=fake_sum, real=real_sum, n=len(data_samples)))

    def compute_metrics(self, results):
        shapes = {r['fake'].shape for r in results}
        if len(shapes) != 1:
            raise ValueError(f'SpectralArtifacts needs images of one size, got {sorted(shapes)}')
        fake = sum(r['fake'] for r in results)
        real = sum(r['real'] for r in results)
        return spectral_artifact_scores(fake, real, self.cutoff)
