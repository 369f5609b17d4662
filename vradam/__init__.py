"""Velocity-Regularized Adam (VRAdam) for PyTorch: ``from vradam import VRAdam, vradam``."""

from vradam._functional import vradam
from vradam.optimizer import VRAdam, validate_hyperparameters

__all__ = ["VRAdam", "validate_hyperparameters", "vradam"]
