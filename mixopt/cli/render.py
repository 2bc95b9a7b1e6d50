"""Shared by several commands: ``NAME=VALUE`` option parsing."""

from __future__ import annotations



from ..errors import ExportError


def parse_pairs(items: list[str], option: str, what: str) -> dict[str, str]:
    """``["a=x", "b=y"]`` -> ``{"a": "x", "b": "y"}`` with one-line errors naming ``option``."""
    out: dict[str, str] = {}
    for item in items:
        domain, sep, value = item.partition("=")
        domain, value = domain.strip(), value.strip()
        if not sep or not domain or not value:
            example = "512" if what == "N" else "/data/code"
            raise ExportError(f"{option} takes DOMAIN={what}. Got {item!r}. Write it as e.g. {option} code={example}.")
        if domain in out:
            raise ExportError(f"{option} may name each domain once. Got '{domain}' twice ({out[domain]!r} and {value!r}). Keep one.")
        out[domain] = value
    return out
