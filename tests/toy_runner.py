"""A toy MMEngine model and data set shared by the checkpointing tests."""
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.lin(inputs).squeeze(-1)
        if mode == 'loss':
            return {'loss': ((out - labels) ** 2).mean()}
        return out


class ToyData(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(3, generator=g), labels=torch.randn((), generator=g))
