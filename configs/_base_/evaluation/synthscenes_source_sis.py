# Label-to-image quality on the SynthScenes SOURCE val label maps, in the source segmenter of the
# model zoo (val mIoU 97.5 on real images): mIoU of the generated images (and of the real ones,
# segment_real), FID in its features (not the standard FID: no Inception weights offline),
# diversity between the model.num_eval_samples samples of each map in the LPIPS form over its
# features (not LPIPS values), per-class colour distance. The Fewshot-SMIS study's evaluation
# (docs/fewshot_smis.md); a config takes it with test_evaluator = _base_.source_sis_evaluator.
source_segmenter = dict(config='configs/segmenters/fcn_synthscenes-source.py',
                        checkpoint='zoo://fcn_synthscenes-source')
source_sis_evaluator = [
    dict(type='SegmentationMIoU', **source_segmenter, label_offset=1, segment_real=True),
    dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                            **source_segmenter)),
    dict(type='LPIPSDiversity', segmenter=source_segmenter),
    dict(type='ClassColorDistance'),
]
