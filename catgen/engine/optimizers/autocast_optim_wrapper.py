"""Mixed precision on CPU and GPU: autocast plus (fp16 on GPU only) dynamic loss scaling."""
import contextlib

import torch
from mmengine.optim import OptimWrapper

from catgen.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An :class:`~mmengine.optim.OptimWrapper` that runs the forward pass under
    ``torch.autocast``. MMEngine's ``AmpOptimWrapper`` requires CUDA; this one also runs on CPU
    (bfloat16, no loss scaling needed), and on GPU uses float16 with a dynamic ``GradScaler``
    or bfloat16 without.

    Args:
        dtype: 'bfloat16', 'float16' or 'auto' (bf16 on CPU, fp16 on CUDA).
        device_type: 'cpu', 'cuda' or 'auto' (cuda when available).
        **kwargs: passed to :class:`OptimWrapper` (optimizer, accumulative_counts, clip_grad).
    """

    def __init__(self, dtype='auto', device_type='auto', **kwargs):
        super().__init__(**kwargs)
        if device_type == 'auto':
            device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
        if dtype == 'auto':
            dtype = 'float16' if device_type == 'cuda' else 'bfloat16'
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(f"dtype must be 'bfloat16', 'float16' or 'auto', got {dtype!r}")
        if device_type == 'cpu' and dtype == 'float16':
            raise ValueError('float16 autocast is not supported on CPU; use bfloat16')
        self.device_type = device_type
        self.dtype = getattr(torch, dtype)
        self.scaler = (torch.amp.GradScaler(device_type)
                       if dtype == 'float16' and device_type == 'cuda' else None)

    def backward(self, loss, **kwargs):
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs):
        if self.scaler is None:
            return super().step(**kwargs)
        if self.clip_grad_kwargs:
            self.scaler.unscale_(self.optimizer)
            self._clip_grad()
        self.scaler.step(self.optimizer, **kwargs)
        self.scaler.update()

    def state_dict(self):
        state = self.optimizer.state_dict()
        if self.scaler is not None:
            state['loss_scaler'] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        scaler_state = state_dict.pop('loss_scaler', None)
        if self.scaler is not None and scaler_state is not None:
            self.scaler.load_state_dict(scaler_state)
        self.optimizer.load_state_dict(state_dict)

    @contextlib.contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(self.device_type, dtype=self.dtype):
            yield
