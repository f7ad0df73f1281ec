"""Errors of authentication and user management."""

from __future__ import annotations

from neurfly.errors import NeurflyError


class AuthenticationError(NeurflyError):
    """A token is missing, malformed, unknown, revoked or expired."""


class PermissionDeniedError(NeurflyError):
    """A known user lacks the role an action needs."""


class AlreadyExistsError(NeurflyError):
    """A user, team or membership of that name exists already."""
