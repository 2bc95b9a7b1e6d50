"""Static HTML report with PNG figures: the plan, the sweep and how far to trust the predictions."""

from .build import build_report

__all__ = ["build_report"]
