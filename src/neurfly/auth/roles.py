"""Team roles and the authenticated caller of a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class Role(str, Enum):
    """A user's role in a team; each role includes the rights of the roles below it.

    * ``viewer`` reads the team's searches, trials, costs, alerts and data.
    * ``member`` also submits and cancels searches, acknowledges alerts,
      registers datasets and publishes artifacts.
    * ``admin`` also manages the team's members and grants other teams
      access to the team's datasets and artifacts.
    """

    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def includes(self, required: Role) -> bool:
        """Return whether this role grants everything ``required`` grants."""
        return self.rank >= required.rank


_RANKS = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Principal:
    """The user behind a request, with their role in each team.

    A platform admin acts as an admin of every team.

    Attributes:
        user_id: Row id of the user.
        user: User name.
        platform_admin: Whether the user manages the whole platform.
        roles: Team name to the user's role in it.
        token_id: Public key id of the token the request used.
    """

    user_id: int
    user: str
    platform_admin: bool
    roles: Mapping[str, Role] = field(default_factory=dict)
    token_id: str = ""

    def role_in(self, team: str) -> Role | None:
        """Return the user's effective role in ``team``, or ``None`` when the user may not see the team."""
        if self.platform_admin:
            return Role.ADMIN
        return self.roles.get(team)

    def can(self, team: str, required: Role) -> bool:
        role = self.role_in(team)
        return role is not None and role.includes(required)

    def visible_teams(self) -> frozenset[str] | None:
        """Teams whose objects the user may read; ``None`` means every team."""
        if self.platform_admin:
            return None
        return frozenset(self.roles)
