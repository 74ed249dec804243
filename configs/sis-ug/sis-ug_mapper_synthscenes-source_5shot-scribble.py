# sis-ug_mapper_synthscenes-source_5shot.py from SCRIBBLES: the 5 labelled images and every
# evaluation label map are given as the scribbles of SimulateScribbles (seeded strokes of width
# 3 and length 20 inside each region, 255 elsewhere; the same as Fewshot-SMIS's sparse configs);
# the mapper reads their one-hot (zero where unlabelled). The metrics compare with the dense
# val label maps.
_base_ = ['./sis-ug_mapper_synthscenes-source_5shot.py']
scribbles = dict(type='SimulateScribbles', seed=0, width=3, length=20)
model = dict(mapper_input='scribble')
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'), scribbles,
                  dict(type='PackSISInputs')]
test_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'), scribbles,
                 dict(type='PackSISInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
