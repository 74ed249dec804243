from .inference import init_synthesizer, label_to_onehot, synthesize

__all__ = ['init_synthesizer', 'label_to_onehot', 'synthesize']
