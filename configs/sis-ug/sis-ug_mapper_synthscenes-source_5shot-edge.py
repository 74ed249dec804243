# sis-ug_mapper_synthscenes-source_5shot.py from EDGE SKETCHES: the mapper reads a 1-channel
# sketch, the boundaries between the regions of the label map (no class names: the layout
# only); the metrics still compare with the dense val label maps.
_base_ = ['./sis-ug_mapper_synthscenes-source_5shot.py']
model = dict(mapper_input='edge')
