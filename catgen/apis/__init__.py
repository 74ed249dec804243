from .affinity import AffinityResult, estimate_affinity
from .evaluate import evaluate
from .inference import (init_synthesizer, label_to_onehot, load_inference_config,
                        load_trained_weights, synthesize)
from .sample_grid import dataset_sample_grid
from .synthesize_folder import synthesize_folder
from .synthesize_images import synthesize_images

__all__ = ['AffinityResult', 'dataset_sample_grid', 'estimate_affinity', 'evaluate',
           'init_synthesizer', 'label_to_onehot', 'load_inference_config', 'load_trained_weights',
           'synthesize', 'synthesize_folder', 'synthesize_images']
