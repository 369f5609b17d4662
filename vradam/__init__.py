"""Velocity-Regularized Adam (VRAdam) for PyTorch: ``from vradam import VRAdam, vradam``."""

from vradam._functional import vradam
from vradam._validation import validate_hyperparameters
from vradam.optimizer import VRAdam

__all__ = ["VRAdam", "validate_hyperparameters", "vradam"]
