"""Errors a user can fix. The CLI prints them as one line and exits with code 2.

Each message says what must hold, what was received and where, then the fix.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class MixoptError(Exception):
    """Base class for every user-facing error."""


class ConfigError(MixoptError):
    """A config file or option is invalid."""


class DataError(MixoptError):
    """A data file or domain is missing, empty, corrupt or too small."""


class MixtureError(MixoptError, ValueError):
    """Mixture weights are invalid or name unknown domains."""


class BudgetError(MixoptError):
    """A token budget cannot be supplied by the data at the allowed repetition."""


class StoreError(MixoptError):
    """The run store cannot be read or written."""


class FitError(MixoptError, ValueError):
    """An estimator cannot be fitted on the given data."""


class NotFittedError(MixoptError):
    """An estimator was used before `fit`."""


class ConsistencyError(MixoptError):
    """Inputs that meet (config, store, model, plan) disagree on domains, data or target."""


class ExportError(MixoptError):
    """A plan cannot be exported in the requested format."""


class ConvergenceError(MixoptError):
    """A numerical method did not converge; the message names the setting to change."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped a command that trains into a run store; the message says what is kept there. Not a
    MixoptError (nothing is wrong with the inputs): the CLI prints ``interrupted: MESSAGE; rerun the same command to
    resume: ...`` on one line and exits with 130, as a shell does for Ctrl-C."""


def interrupted(store) -> Interrupted:
    """The :class:`Interrupted` for a sweep (or verify) that Ctrl-C stopped while training into ``store`` (a RunStore):
    its finished runs are kept, and the same command trains the rest."""
    try:
        n = len(store.run_ids())
    except Exception:  # noqa: BLE001 - the line must come out whatever the store's state
        return Interrupted(f"the finished runs are kept in {store.root}")
    return Interrupted(f"{n} finished run{'' if n == 1 else 's'} kept in {store.root}")


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


def require_positive(name: str, value: float | None, fix: str = "") -> None:
    """An optional number (a scale, a budget) that is given must be finite and > 0 (0 is not "unset": leave it out);
    else a one-line ConfigError naming ``name`` (the flag or field) and ``fix``."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}." + (f" {fix}" if fix else ""))


def pydantic_summary(exc: "ValidationError") -> str:
    """First error of a pydantic ValidationError as `field: message`.

    An unknown key is reported before anything else: a typo such as ``pth:`` also makes ``path`` missing,
    and the unknown key is the one that points at the fix.
    """
    errs = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    e = errs[0]
    loc = ".".join(_printable(str(x)) for x in e.get("loc", ())) or "(root)"
    msg = _printable(e.get("msg", "invalid").removeprefix("Value error, ")).rstrip(". ")
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc}: {msg}{more}"


def _printable(text: str) -> str:
    """Escape line breaks and other control characters (from keys or values a user typed) so errors stay one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
