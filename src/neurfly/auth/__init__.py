"""Users, teams, roles and API tokens.

Users belong to teams with a role (viewer, member, admin); platform admins
manage teams and users across the platform. API tokens are stored as salted
HMAC digests, shown once when issued, revocable and optionally expiring.
"""

from neurfly.auth.accounts import (
    check_name,
    create_team,
    create_user,
    get_team,
    get_user,
    list_teams,
    list_users,
    remove_member,
    roles_of,
    set_member,
    set_user_disabled,
    team_members,
)
from neurfly.auth.errors import AlreadyExistsError, AuthenticationError, PermissionDeniedError
from neurfly.auth.models import MembershipRecord, TeamRecord, TokenRecord, UserRecord
from neurfly.auth.roles import Principal, Role
from neurfly.auth.tokens import IssuedToken, authenticate, find_token, issue_token, list_tokens, revoke_token

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "IssuedToken",
    "MembershipRecord",
    "PermissionDeniedError",
    "Principal",
    "Role",
    "TeamRecord",
    "TokenRecord",
    "UserRecord",
    "authenticate",
    "check_name",
    "create_team",
    "create_user",
    "find_token",
    "get_team",
    "get_user",
    "issue_token",
    "list_teams",
    "list_tokens",
    "list_users",
    "remove_member",
    "revoke_token",
    "roles_of",
    "set_member",
    "set_user_disabled",
    "team_members",
]
