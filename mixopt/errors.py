"""Errors a user can fix. The CLI prints them as one line and exits with code 2.

Each message says what must hold, what was received and where, then the fix.
Any other exception is a bug and keeps its traceback.
"""


class MixoptError(Exception):
    """Base class for every user-facing error."""


class ConfigError(MixoptError):
    """A config file or option is invalid."""


class DataError(MixoptError):
    """A data file or domain is missing, empty, corrupt or too small."""


class MixtureError(MixoptError):
    """Mixture weights are invalid or name unknown domains."""


class BudgetError(MixoptError):
    """A token budget cannot be supplied by the data at the allowed repetition."""


class StoreError(MixoptError):
    """The run store cannot be read or written."""


class FitError(MixoptError):
    """An estimator cannot be fitted on the given data."""


class NotFittedError(MixoptError):
    """An estimator was used before `fit`."""


class ExportError(MixoptError):
    """A plan cannot be exported in the requested format."""


class ConvergenceError(MixoptError):
    """A numerical method did not converge; the message names the setting to change."""


class MissingExtraError(MixoptError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


def require(module: str, extra: str):
    """Import an optional dependency or raise naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"This feature needs the optional package '{module}', which is not installed ({exc}). "
            f"Install it with: pip install 'mixopt[{extra}]'"
        ) from exc
