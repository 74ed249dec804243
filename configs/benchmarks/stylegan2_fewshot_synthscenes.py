# DCL's analysis on SynthScenes ("A Closer Look at Few-shot Image Generation", Zhao et al. 2022):
# the SynthScenes StyleGAN2 (zoo://stylegan2_synthscenes-source) adapted to 10 images of the
# SynthScenes target domain by
# every strategy, 3 seeds, the same budget (1,000 iterations of batch 4, the shared base
# configs/_base_/schedules/adapt_stylegan2_synthscenes.py). During training the
# AdaptationCurveHook measures, every 100 iterations, quality (realism classifier: mean target
# probability of 1,000 images from fixed latents) and diversity (intra-cluster distance around
# the 10 shots, LPIPS form in the target segmenter's features); the report draws both against
# the iteration, one line per strategy (curves_10shots.png: the paper's central figure), and
# tools/test.py adds the FID in the target segmenter's features against the 500 held-out target
# images. Measured (--jobs 2 on the shared 2-core machine): 4-17 min per run (BSA 4-7,
# CDC/EWC 9-11, DCL 12-17, finetune-all/FreezeD 7-17 while sharing the cores), the 6 runs of one
# seed in 29-39 min: the 18 runs take about 1.5-2 h (results: docs/benchmarks.md).
#   python tools/benchmark.py configs/benchmarks/stylegan2_fewshot_synthscenes.py --jobs 2
# Needs: data/synthscenes (tools/prepare_synthscenes.py); the models come from catgen's model zoo.
work_dir = 'work_dirs/benchmarks/stylegan2_fewshot_synthscenes'
strategies = dict(
    finetune_all='configs/finetune-all/stylegan2_synthscenes-target_{shots}.py',
    freezed='configs/freezed/stylegan2_synthscenes-target_{shots}.py',
    ewc='configs/ewc/stylegan2_synthscenes-target_{shots}.py',
    cdc='configs/cdc/stylegan2_synthscenes-target_{shots}.py',
    dcl='configs/dcl/stylegan2_synthscenes-target_{shots}.py',
    bsa='configs/bsa/stylegan2_synthscenes-target_{shots}.py',
)
shots = [10]
seeds = [0, 1, 2]
iters = 1000
batch_size = 4
num_eval_samples = 1
options = dict(train_dataloader=dict(num_workers=0))
segmenter = dict(config='configs/segmenters/fcn_synthscenes-target.py',
                 checkpoint='zoo://fcn_synthscenes-target')
evaluator = [dict(type='FID',
                  feature_extractor=dict(type='SegmenterFeatureExtractor', **segmenter))]
diversity = 'adapt/intra_lpips_seg-fcn_synthscenes-target'
metrics = [
    dict(key='adapt/realism', name='quality (realism)', lower_is_better=False),
    dict(key=diversity, name='diversity (intra-cluster, seg. LPIPS form)',
         lower_is_better=False),
    dict(key='fid_seg-fcn_synthscenes-target', name='FID (segmenter features)',
         lower_is_better=True),
]
# The paper's claims: DCL keeps more diversity than finetuning and CDC at the end of adaptation;
# (quality converging to a similar level for all is read from the curves, docs/benchmarks.md).
checks = [dict(better='dcl', worse=worse, shots=10, metric=diversity)
          for worse in ('finetune_all', 'cdc')]
