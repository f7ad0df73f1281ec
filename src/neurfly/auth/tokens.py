"""API tokens: issued once, stored as a salted HMAC digest, revocable, with an expiry.

A token reads ``nf_<key id>_<secret>``. The key id is public and finds the
row; the secret is 32 random bytes that only the token's owner has. The store keeps
HMAC-SHA256(salt, secret) with a random salt per token, so a copy of the
database does not let anyone call the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from neurfly.auth.accounts import get_user, roles_of
from neurfly.auth.errors import AuthenticationError
from neurfly.auth.models import TokenRecord, UserRecord
from neurfly.auth.roles import Principal
from neurfly.errors import NotFoundError

_logger = logging.getLogger(__name__)

TOKEN_PREFIX = "nf"
KEY_ID_PATTERN = re.compile(r"^[a-z2-7]{12}$")
TOKEN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,62}$")
_TOKEN_PATTERN = re.compile(r"^nf_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$")
# ``last_used_at`` is written at most this often per token, so reads do not turn into writes.
LAST_USED_RESOLUTION_S = 60.0
# Digest compared when the key id is unknown, so a miss costs the same time as a wrong secret.
_DUMMY_SALT = secrets.token_hex(16)


@dataclass(frozen=True)
class IssuedToken:
    """A new token. ``token`` is the only copy of the secret; show it once to its owner."""

    key_id: str
    token: str
    user: str
    name: str
    created_at: float
    expires_at: float | None


def issue_token(
    session: Session, user: str, name: str = "default", expires_in_s: float | None = None, now: float | None = None
) -> IssuedToken:
    """Create a token for ``user``.

    Args:
        session: Session the caller commits.
        user: Existing user name.
        name: Label that helps the owner tell tokens apart.
        expires_in_s: Lifetime in seconds; ``None`` for a token that never expires.
        now: Creation time, seconds since the epoch.

    Raises:
        ValueError: The name or lifetime is invalid.
        NotFoundError: The user does not exist.
    """
    if not isinstance(name, str) or not TOKEN_NAME_PATTERN.match(name):
        raise ValueError(f"token name {name!r} is invalid; use 1-63 letters, digits, spaces or . _ @ : -")
    if expires_in_s is not None and not expires_in_s > 0:
        raise ValueError(f"token lifetime must be positive seconds or None for no expiry, got {expires_in_s!r}")
    now = time.time() if now is None else now
    user_row = get_user(session, user)

    key_id = base64.b32encode(secrets.token_bytes(8)).decode("ascii").lower()[:12]
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    row = TokenRecord(
        key_id=key_id, user_id=user_row.id, name=name, salt=salt, digest=_digest(salt, secret),
        created_at=now, expires_at=None if expires_in_s is None else now + expires_in_s,
    )
    session.add(row)
    session.flush()
    _logger.info("token %s issued to user %s", key_id, user)
    return IssuedToken(key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}", user, name, now, row.expires_at)


def authenticate(session: Session, token: str, now: float | None = None) -> Principal:
    """Return the principal a token stands for, and note when the token was last used.

    The caller commits the session to keep ``last_used_at``.

    Raises:
        AuthenticationError: The token is malformed, unknown, revoked or
            expired, or its user is disabled.
    """
    now = time.time() if now is None else now
    match = _TOKEN_PATTERN.match(token or "")
    if match is None:
        raise AuthenticationError("invalid token; a token reads nf_<key id>_<secret>, as 'neurfly admin create-token' prints it")
    key_id, secret = match.groups()

    row = session.scalars(select(TokenRecord).where(TokenRecord.key_id == key_id)).first()
    expected = row.digest if row is not None else _digest(_DUMMY_SALT, "")
    actual = _digest(row.salt if row is not None else _DUMMY_SALT, secret)
    if row is None or not hmac.compare_digest(expected, actual):
        raise AuthenticationError("invalid token; check that it was copied whole, or ask for a new one")
    if row.revoked_at is not None:
        raise AuthenticationError(f"token {key_id} was revoked; ask for a new one")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationError(f"token {key_id} expired; ask for a new one")
    user = session.get(UserRecord, row.user_id)
    if user is None or user.disabled:
        raise AuthenticationError(f"the user of token {key_id} is disabled")

    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_S:
        session.execute(update(TokenRecord).where(TokenRecord.id == row.id).values(last_used_at=now))
    return Principal(user.id, user.name, user.platform_admin, roles_of(session, user.id), key_id)


def revoke_token(session: Session, key_id: str, now: float | None = None) -> TokenRecord:
    """Revoke a token; requests with it fail from the next one on. Revoking twice changes nothing.

    Raises:
        NotFoundError: No token has that key id.
    """
    row = find_token(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = time.time() if now is None else now
        session.flush()
        _logger.info("token %s revoked", key_id)
    return row


def find_token(session: Session, key_id: str) -> TokenRecord:
    """Look up a token by its key id.

    Raises:
        NotFoundError: No token has that key id.
    """
    row = session.scalars(select(TokenRecord).where(TokenRecord.key_id == key_id)).first() if KEY_ID_PATTERN.match(key_id) else None
    if row is None:
        raise NotFoundError("token", key_id, "list tokens with GET /api/v1/tokens")
    return row


def list_tokens(session: Session, user_id: int | None = None) -> list[tuple[TokenRecord, str]]:
    """Tokens with their user names, newest first; only ``user_id``'s when given."""
    query = select(TokenRecord, UserRecord.name).join(UserRecord, UserRecord.id == TokenRecord.user_id).order_by(TokenRecord.id.desc())
    if user_id is not None:
        query = query.where(TokenRecord.user_id == user_id)
    return [(row, name) for row, name in session.execute(query).all()]


def _digest(salt: str, secret: str) -> str:
    return hmac.new(salt.encode("ascii"), secret.encode("ascii"), hashlib.sha256).hexdigest()
