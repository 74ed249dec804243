"""A picture of one or several synthesizers on the same label maps of a data set."""
import os
import os.path as osp


def dataset_sample_grid(models, dataset, out=None, num_maps=8, num_samples=1, scale=2):
    """Grid of the first ``num_maps`` label maps of ``dataset``: one column per map, rows
    label map | for each model, ``num_samples`` generated rows | real image.

    The noise of sample ``k`` of map ``i`` is the models' fixed evaluation noise of sample id
    ``k * num_maps + i`` (the same for every model, every run).

    Args:
        models: list of ``(row name, synthesizer)``; the synthesizers take the data set's label
            channels (e.g. built from the data set's config by
            :func:`~catgen.apis.init_synthesizer`). The first one's data preprocessor reads the
            batch.
        dataset: a built catgen data set (its items have ``inputs``/``data_samples`` as the
            test dataloader yields them).
        out: PNG path to write (atomically; its folder is created), or None.
        num_maps: label maps (columns).
        num_samples: generated rows per model (different noise each).
        scale: integer upscaling of every tile (nearest neighbour).

    Returns:
        uint8 array[H, W, 3], the grid.
    """
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate

    from catgen.models.synthesizers.base_synthesizer import to_uint8
    from catgen.visualization import make_sample_grid, save_image

    if not models:
        raise ValueError('dataset_sample_grid needs at least one (name, synthesizer) pair')
    if int(num_maps) < 1 or int(num_samples) < 1:
        raise ValueError(f'num_maps and num_samples must be >= 1, got {num_maps} and '
                         f'{num_samples}')
    if len(dataset) == 0:
        raise ValueError('the data set is empty: no label maps to draw')
    num_maps = min(int(num_maps), len(dataset))
    batch = pseudo_collate([dataset[i] for i in range(num_maps)])
    fakes, names = [], []
    with torch.no_grad():
        data = models[0][1].data_preprocessor(batch, False)
        seg = data['inputs']['seg']
        for name, model in models:
            pre = model.data_preprocessor
            channels = pre.num_classes + getattr(pre, 'extra_label_channels', 0)
            if channels != seg.shape[1]:
                raise ValueError(
                    f'model "{name}" takes {channels} label channels, the data set gives '
                    f'{seg.shape[1]}: build it from the data set\'s config')
            # what this model synthesizes from (the scribbles of a sparse-input model)
            _, own = model.conditioning(data['inputs']) if hasattr(model, 'conditioning') \
                else (None, seg)
            for k in range(int(num_samples)):
                ids = [k * num_maps + i for i in range(num_maps)]
                fakes.append(to_uint8(model.synthesize(own.to(next(model.parameters()).device),
                                                       sample_ids=ids)).cpu())
                names.append(name if num_samples == 1 else f'{name} #{k + 1}')
    palette = dataset.metainfo.get('palette')
    grid = make_sample_grid(data['inputs']['label'].numpy(), torch.stack(fakes, 1).numpy(),
                            to_uint8(data['inputs']['img']).numpy(),
                            palette=None if palette is None else np.asarray(palette, np.uint8),
                            row_names=['label map', *names, 'real'], scale=scale)
    if out is not None:
        if osp.dirname(str(out)):
            os.makedirs(osp.dirname(str(out)), exist_ok=True)
        save_image(grid, out)
    return grid
