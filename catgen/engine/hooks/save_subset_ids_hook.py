"""Writes the ids of the training images actually used (the few-shot subset) into the work dir."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from catgen.registry import HOOKS
from catgen.utils.io import write_text_atomic


@HOOKS.register_module()
class SaveSubsetIdsHook(Hook):
    """Before training, write ``<work_dir>/train_ids.txt``: one image id per line, in the order
    the data set holds them, so that a few-shot run can be reproduced and audited.

    Args:
        filename: name of the file in the work dir.
    """

    priority = 'VERY_LOW'

    def __init__(self, filename='train_ids.txt'):
        self.filename = filename

    def before_train(self, runner):
        if not is_main_process():
            return
        dataset = runner.train_dataloader.dataset
        ids = getattr(dataset, 'subset_ids', None)
        if ids is None:
            ids = [dataset.get_data_info(i).get('img_id') or osp.splitext(
                osp.basename(dataset.get_data_info(i)['img_path']))[0] for i in range(len(dataset))]
        path = osp.join(runner.work_dir, self.filename)
        write_text_atomic(path, ''.join(f'{i}\n' for i in ids))
        runner.logger.info(f'{len(ids)} training image ids written to {path}')
