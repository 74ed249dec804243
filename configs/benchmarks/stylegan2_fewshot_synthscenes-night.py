# DCL's analysis on the second SynthScenes target: the NIGHT rendering of new source scenes
# (tools/prepare_synthscenes_styles.py; docs/synthscenes.md): the strategies and budget of
# stylegan2_fewshot_synthscenes.py, the data, the realism classifier's target images and the
# segmenter of the measures (the source one: the night scenes are source scenes) overridden.
#   python tools/prepare_synthscenes_styles.py
#   python tools/benchmark.py configs/benchmarks/stylegan2_fewshot_synthscenes-night.py --jobs 2
_base_ = ['./stylegan2_fewshot_synthscenes.py']
work_dir = 'work_dirs/benchmarks/stylegan2_fewshot_synthscenes-night'
styles_root = 'data/synthscenes-styles'
segmenter = dict(config='configs/segmenters/fcn_synthscenes-source.py',
                 checkpoint='zoo://fcn_synthscenes-source')
night_val = dict(type='ImageFolderDataset', data_root=styles_root, img_path='night/images/val')
options = {
    'train_dataloader.num_workers': 0,
    'train_dataloader.dataset.data_root': styles_root,
    'train_dataloader.dataset.img_path': 'night/images/train',
    'test_dataloader.dataset': night_val,
    'custom_hooks.2.target_images': night_val,
    'custom_hooks.2.distance': dict(type='segmenter', **segmenter),
}
evaluator = [dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                                      **segmenter))]
diversity = 'adapt/intra_lpips_seg-fcn_synthscenes-source'
metrics = [
    dict(key='adapt/realism', name='quality (realism)', lower_is_better=False),
    dict(key=diversity, name='diversity (intra-cluster, seg. LPIPS form)',
         lower_is_better=False),
    dict(key='fid_seg-fcn_synthscenes-source', name='FID (segmenter features)',
         lower_is_better=True),
]
checks = [dict(better='dcl', worse=worse, shots=10, metric=diversity)
          for worse in ('finetune_all', 'cdc')]
