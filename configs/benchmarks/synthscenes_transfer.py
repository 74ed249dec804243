# The comparative benchmark on SynthScenes: every transfer strategy at 25 and 100 shots, 3 seeds
# (tables: mean ± std; plots: error bars), the same budget (2,000 iterations of batch 8, i.e.
# 16,000 training images, the shared base configs/_base_/schedules/transfer_synthscenes.py: where
# finetune-all's curves have flattened, docs/benchmarks.md "How long is long enough?"), the same
# source model and the same evaluation on the 500 target val label maps. About 15 hours on 2 CPU
# cores (54 trained runs of ~15 min with --jobs 2, plus evaluations; resumable), well under one
# on a GPU; use --jobs 2 on CPU (two runs side by side, one thread each).
#   python tools/benchmark.py configs/benchmarks/synthscenes_transfer.py
# Needs: data/synthscenes (tools/prepare_synthscenes.py); the source OASIS and the target
# segmenter come from catgen's model zoo (zoo://oasis_synthscenes-source,
# zoo://fcn_synthscenes-target; docs/model_zoo.md).
work_dir = 'work_dirs/benchmarks/synthscenes_transfer'
strategies = dict(
    scratch='configs/scratch/oasis_synthscenes_{shots}.py',
    finetune_all='configs/finetune-all/oasis_synthscenes_{shots}.py',
    freezed='configs/freezed/oasis_synthscenes_{shots}.py',
    bsa='configs/bsa/oasis_synthscenes_{shots}.py',
    ewc='configs/ewc/oasis_synthscenes_{shots}.py',
    cdc='configs/cdc/oasis_synthscenes_{shots}.py',
    dcl='configs/dcl/oasis_synthscenes_{shots}.py',
    cat='configs/cat/oasis_synthscenes_{shots}.py',
    # CAT with the segmenter affinity (the best estimator measured, docs/affinity.md): the local
    # source segmenter of the model zoo on the run's own few-shot target images
    cat_segmenter=dict(config='configs/cat/oasis_synthscenes_{shots}.py', options={
        'model.transfer.affinity': dict(
            _delete_=True,  # replaces the config's TextAffinity (and its arguments) whole
            type='SegmenterAffinity', min_confidence=0.0,
            segmenter=dict(type='mmseg',
                           config='configs/segmenters/fcn_synthscenes-source-local.py',
                           checkpoint='zoo://fcn_synthscenes-source-local'))}),
    # the source model behind the text affinity, no training: the same for every shot count
    cat_training_free=dict(config='configs/cat/oasis_synthscenes-training-free.py', train=False,
                           shot_independent=True),
    # an untrained generator (random weights, no training): the floor for "non-trivial"
    untrained=dict(config='configs/scratch/oasis_synthscenes_{shots}.py', train=False,
                   checkpoint='random', shot_independent=True),
)
shots = [25, 100]
seeds = [0, 1, 2]
iters = 2000
batch_size = 8  # the reference batch: CDC (batch 4) trains 2 x iters, the same images
# metric-vs-iteration curves: has the budget flattened them? (finetune-all, the strongest
# baseline of the last measurement, and CAT)
curves = dict(strategies=['finetune_all', 'ewc', 'cat'], interval=500)
# One image per label map: the diversity metrics (LPIPS) need AlexNet/VGG weights that cannot be
# had offline (docs/metrics.md); with them, set 2 and add LPIPSDiversity to the evaluator.
num_eval_samples = 1
options = dict(train_dataloader=dict(num_workers=0))
target_segmenter = dict(config='configs/segmenters/fcn_synthscenes-target.py',
                        checkpoint='zoo://fcn_synthscenes-target')
# FID/KID in the feature space of the target segmenter (no Inception weights offline): reported
# as fid_seg-fcn_synthscenes-target / kid_seg-..., NOT comparable with the standard FID.
seg_features = dict(type='SegmenterFeatureExtractor', **target_segmenter)
evaluator = [
    dict(type='FID', feature_extractor=seg_features),
    dict(type='KID', feature_extractor=seg_features, subset_size=100),
    dict(type='SegmentationMIoU', **target_segmenter, label_offset=1, per_class=False),
    dict(type='AppearanceDistance'),  # num_classes: the data set's, filled in by the tools
    dict(type='ClassColorDistance'),
    dict(type='SpectralArtifacts'),
]
metrics = [
    dict(key='fid_seg-fcn_synthscenes-target', name='FID (segmenter features)',
         lower_is_better=True),
    dict(key='seg/mIoU', name='mIoU', lower_is_better=False),
    dict(key='appearance/mean', name='appearance dist', lower_is_better=True),
    dict(key='color/mean_dist', name='colour dist', lower_is_better=True),
    dict(key='spectrum/axis_excess_db', name='stripes (dB)', lower_is_better=True),
]
# The papers' qualitative claims, checked on each table metric.
checks = [
    dict(better=better, worse=worse, shots=shots, metric=m['key'])
    for better, worse, shots in [('cat', 'finetune_all', 100), ('finetune_all', 'scratch', 100),
                                 ('finetune_all', 'scratch', 25),
                                 ('cat_training_free', 'untrained', 100),
                                 # finetuning must improve on the training-free start, stripes
                                 # included (this check caught the border stripes, issue 11)
                                 ('cat', 'cat_training_free', 100)]
    for m in metrics]
