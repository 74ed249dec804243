# fewshot-smis_synthscenes-source_5shot.py in the SPARSE mode: the 5 labelled images and every
# evaluation label map are given as scribbles (SimulateScribbles: seeded strokes of width 3 and
# length 20 inside each region, 255 elsewhere; docs/fewshot_smis.md); pseudo labels: every
# scribbled pixel claims its 3 most similar sample pixels above cosine 0.5. The metrics compare
# with the dense val label maps.
_base_ = ['./fewshot-smis_synthscenes-source_5shot.py']
scribbles = dict(type='SimulateScribbles', seed=0, width=3, length=20)
model = dict(mode='sparse')
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'), scribbles,
                  dict(type='PackSISInputs')]
test_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'), scribbles,
                 dict(type='PackSISInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
