# L2-SP (a third-party strategy from the catgen_l2sp plugin) on SynthScenes: finetune-all plus
# alpha * ||theta - theta_source||^2 on the generator weights copied from the source; same data,
# source model and budget as configs/<method>/oasis_synthscenes_100.py. Run from the catgen
# checkout after `pip install -e examples/plugins/catgen_l2sp` (or with this plugin folder on
# PYTHONPATH):
#   python tools/train.py examples/plugins/catgen_l2sp/configs/l2sp_oasis_synthscenes_100.py
_base_ = ['../../../../configs/_base_/schedules/transfer_synthscenes.py']
custom_imports = dict(imports=['catgen_l2sp'], allow_failed_imports=False)
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='L2SP', source_checkpoint=source_checkpoint, alpha=0.01))
