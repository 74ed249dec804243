from .base import TransferStrategy

__all__ = ['TransferStrategy']
