"""DCL's analysis of few-shot adaptation: quality (a realism classifier) and diversity
(intra-cluster LPIPS) of an unconditional generator at fixed intervals during adaptation."""
import json
import os.path as osp
import time

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from catgen.evaluation.metrics.intra_lpips import (intra_lpips, load_training_images,
                                                   training_image_paths)
from catgen.evaluation.realism_classifier import RealismClassifier, train_realism_classifier
from catgen.models.synthesizers.base_synthesizer import to_uint8, unwrap
from catgen.registry import HOOKS
from catgen.utils.io import atomic_write, write_text_atomic

DEFAULT_CACHE_DIR = 'work_dirs/.cache/realism'


def load_images(dataset_cfg, size):
    """uint8 Tensor[N, 3, h, w] of a data set's images, read from their files and resized."""
    return load_images_from_paths(training_image_paths(train_dataset=dataset_cfg), size)


def build_distance(cfg):
    """The perceptual distance of the diversity measure: ``(model, key suffix)``.

    ``cfg``: ``dict(type='lpips', net='vgg', backbone_path=None, resize=None)`` (LPIPS proper:
    needs the torchvision weights file) or ``dict(type='segmenter', config=..., checkpoint=...)``
    (:class:`~catgen.evaluation.segmenter_lpips.SegmenterLPIPS`, for data without ImageNet
    weights offline; its values are reported under ``intra_lpips_<name>``).
    """
    cfg = dict(cfg)
    kind = cfg.pop('type', 'lpips')
    if kind == 'lpips':
        from catgen.evaluation.lpips_model import LPIPSModel
        return LPIPSModel(net=cfg.pop('net', 'vgg'), **cfg), ''
    if kind == 'segmenter':
        from catgen.evaluation.segmenter_lpips import SegmenterLPIPS
        model = SegmenterLPIPS(**cfg)
        return model, f'_{model.name}'
    raise ValueError(f"distance type must be 'lpips' or 'segmenter', got {kind!r}")


@HOOKS.register_module()
class AdaptationCurveHook(Hook):
    """Quality and diversity of the EMA generator every ``interval`` iterations (and before the
    first one: the source model), as DCL's central figure.

    - **quality** (``realism``): the mean target probability that a realism classifier
      (:mod:`catgen.evaluation.realism_classifier`, trained once on held-out real source vs
      target images and cached) gives ``num_samples`` images generated from fixed latents
      (sample ids ``0 .. num_samples - 1``, the same at every evaluation and in every run);
    - **diversity** (``intra_lpips``): the intra-cluster LPIPS of the same images around the
      training images (:func:`~catgen.evaluation.metrics.intra_lpips.intra_lpips`; 50 members
      per cluster).

    Both are logged (``adapt/realism``, ``adapt/intra_lpips...``) and written, one record per
    evaluation, to ``<work_dir>/<out_file>`` (atomically; a resumed run keeps the records up to
    its iteration). Only the main process evaluates.

    Args:
        interval: iterations between evaluations.
        source_images: data set config of held-out SOURCE-domain images (classifier label 0).
        target_images: data set config of held-out TARGET-domain images (label 1), not the
            training shots.
        train_images: data set config of the training images (cluster centres); None: the
            runner's training set.
        num_samples: generated images per evaluation (1,000 as DCL).
        distance: the perceptual distance (:func:`build_distance`): LPIPS VGG (the protocol)
            or a segmenter's features where no ImageNet weights are at hand.
        max_per_cluster: members kept per cluster (50).
        classifier: keyword arguments of :func:`~catgen.evaluation.realism_classifier.
            train_realism_classifier` (iters, batch_size, lr, width, held_out, seed).
        min_accuracy: refuse a classifier whose held-out accuracy is below this (it could not
            tell the domains apart, so its probabilities would measure nothing).
        batch_size: images per generator forward.
        cache_dir: where trained classifiers are kept (keyed by the images and settings).
        out_file: JSON file name in the work dir.
    """

    priority = 'LOW'

    def __init__(self, interval, source_images, target_images, train_images=None,
                 num_samples=1000, distance=dict(type='lpips', net='vgg'), max_per_cluster=50,
                 classifier=None, min_accuracy=0.75, batch_size=50, cache_dir=DEFAULT_CACHE_DIR,
                 out_file='adaptation_curves.json'):
        if int(interval) < 1 or int(num_samples) < 2:
            raise ValueError(f'interval must be >= 1 and num_samples >= 2, got {interval}, '
                             f'{num_samples}')
        self.interval = int(interval)
        self.source_images = source_images
        self.target_images = target_images
        self.train_images = train_images
        self.num_samples = int(num_samples)
        self.distance_cfg = distance
        self.max_per_cluster = int(max_per_cluster)
        self.classifier_cfg = dict(classifier or {})
        self.min_accuracy = float(min_accuracy)
        self.batch_size = int(batch_size)
        self.cache_dir = cache_dir
        self.out_file = out_file
        self.records = []
        self._last = None

    # ------------------------------------------------------------------ set-up
    def classifier(self, size, logger):
        """The realism classifier for ``size``: from the cache, else trained and cached."""
        from catgen.evaluation.real_stats import dataset_image_files
        from catgen.registry import DATASETS
        from catgen.utils.cache import FileRef, cache_key
        files = {}
        for name, cfg in (('source', self.source_images), ('target', self.target_images)):
            files[name] = [FileRef(p) for p in dataset_image_files(DATASETS.build(cfg))]
        key = cache_key(kind='realism_classifier', size=list(size), settings=self.classifier_cfg,
                        **files)
        path = osp.join(self.cache_dir, f'realism-{key[:32]}.pth')
        if osp.isfile(path):
            state = torch.load(path, map_location='cpu', weights_only=True)
            if state.get('key') == key:
                model = RealismClassifier(self.classifier_cfg.get('width', 32))
                model.load_state_dict(state['state_dict'])
                logger.info(f'realism classifier from {path} (held-out accuracy '
                            f'{state["info"]["accuracy"]:.3f})')
                return model.eval(), state['info']
        source = load_images(self.source_images, size)
        target = load_images(self.target_images, size)
        model, info = train_realism_classifier(source, target, log=logger.info,
                                               **self.classifier_cfg)
        with atomic_write(path) as tmp:
            torch.save(dict(key=key, state_dict=model.state_dict(), info=info), tmp)
        return model, info

    def before_train(self, runner):
        if not is_main_process():
            return
        model = unwrap(runner.model)
        size = model.eval_generator.output_size
        self.realism, self.classifier_info = self.classifier(size, runner.logger)
        if self.classifier_info['accuracy'] < self.min_accuracy:
            raise ValueError(
                f'the realism classifier tells the held-out source and target images apart '
                f'with accuracy {self.classifier_info["accuracy"]:.3f} < min_accuracy '
                f'{self.min_accuracy}: its target probability would not measure quality. Give '
                'it more images or steps (classifier=dict(iters=...)), or check that '
                'source_images and target_images are different domains.')
        self.distance, self.suffix = build_distance(self.distance_cfg)
        train_cfg = self.train_images
        if train_cfg is None:
            dataset = runner.train_dataloader.dataset
            paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
        else:
            paths = training_image_paths(train_dataset=train_cfg)
        self.train_emb = self.distance.embed(load_images_from_paths(paths, size))
        self.path = osp.join(runner.work_dir, self.out_file)
        if osp.isfile(self.path):  # a resumed run: keep the records it had reached
            old = json.loads(open(self.path).read()).get('records', [])
            self.records = [r for r in old if r['iter'] <= runner.iter]
        if not any(r['iter'] == runner.iter for r in self.records):
            self.evaluate(runner, runner.iter)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def generate(self, model):
        """uint8 Tensor[num_samples, 3, H, W] from the fixed latents (EMA generator)."""
        was = model.training
        model.eval()
        size = model.eval_generator.output_size
        device = next(model.parameters()).device
        out = []
        try:
            for start in range(0, self.num_samples, self.batch_size):
                ids = list(range(start, min(start + self.batch_size, self.num_samples)))
                seg = torch.zeros(len(ids), 0, *size, device=device)
                out.append(to_uint8(model.synthesize(seg, sample_ids=ids)).cpu())
        finally:
            model.train(was)
        return torch.cat(out)

    def evaluate(self, runner, iteration):
        """Generate, score and record the generator after ``iteration`` updates."""
        start = time.perf_counter()
        fakes = self.generate(unwrap(runner.model))
        realism, _ = self.realism.target_probability(fakes)
        div = intra_lpips(self.distance, fakes, self.train_emb,
                          max_per_cluster=self.max_per_cluster)['intra_lpips']
        key = f'intra_lpips{self.suffix}'
        record = dict(iter=int(iteration), realism=realism, **{key: div},
                      seconds=round(time.perf_counter() - start, 1))
        self.records = [r for r in self.records if r['iter'] != record['iter']] + [record]
        self._last = record['iter']
        runner.message_hub.update_scalar('adapt/realism', realism)
        runner.message_hub.update_scalar(f'adapt/{key}', div)
        runner.logger.info(f'adaptation curve at iteration {record["iter"]}: realism '
                           f'{realism:.4f}, {key} {div:.4f} ({record["seconds"]} s)')
        payload = dict(records=sorted(self.records, key=lambda r: r['iter']),
                       classifier=self.classifier_info, num_samples=self.num_samples,
                       max_per_cluster=self.max_per_cluster, diversity_key=key,
                       distance=self.distance_cfg)
        write_text_atomic(self.path, json.dumps(payload, indent=1))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        # runner.iter counts the finished iterations only after the hooks: +1
        if is_main_process() and (runner.iter + 1) % self.interval == 0:
            self.evaluate(runner, runner.iter + 1)

    def after_train(self, runner):
        if is_main_process() and self._last != runner.iter:
            self.evaluate(runner, runner.iter)


def load_images_from_paths(paths, size):
    """uint8 Tensor[N, 3, h, w] of the images at ``paths`` resized to ``size``."""
    imgs = load_training_images(paths, size)
    return ((imgs + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
