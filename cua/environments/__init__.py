"""Environments the loop drives: a Playwright browser, a local X display, remote VMs."""

from .base import ENV_KINDS, Environment, EnvKind

__all__ = ["ENV_KINDS", "Environment", "EnvKind"]
