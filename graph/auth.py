"""Who the caller is: a verified JWT, nobody (anonymous), or, in development mode only,
whatever ``X-User-Id`` says.

An invalid or expired token is an error (UNAUTHENTICATED), never anonymous.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from repository.access import ANONYMOUS, Principal

from .settings import Settings

logger = logging.getLogger("jobgraph.auth")

KNOWN_ROLES = frozenset({"admin", "worker"})
USER_HEADER = "x-user-id"
ROLES_HEADER = "x-user-roles"


class UnauthenticatedError(Exception):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    principal: Principal
    expires_at: float | None = None
    """Unix time the token stops being valid; WebSockets are closed then."""


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key: str | None = settings.jwt_public_key or settings.jwt_secret
        if settings.jwt_public_key:
            self.algorithms = [a for a in settings.jwt_algorithms if not a.startswith("HS")]
        else:
            self.algorithms = [a for a in settings.jwt_algorithms if a.startswith("HS")]
        if settings.dev_trust_user_header:
            logger.warning(
                "JOBGRAPH_DEV_TRUST_USER_HEADER is on: any client can act as any user by "
                "sending X-User-Id. Never enable this in production."
            )

    def identify(self, headers: Mapping[str, str]) -> Identity:
        """From HTTP headers (lower-case names) or a WebSocket connection-init payload."""
        authorization = _get(headers, "authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
            return self.verify(token.strip())
        if self.settings.dev_trust_user_header and _get(headers, USER_HEADER):
            roles = _get(headers, ROLES_HEADER) or ""
            principal = Principal(
                _get(headers, USER_HEADER),
                frozenset(r.strip() for r in roles.split(",") if r.strip() in KNOWN_ROLES),
            )
            return Identity(principal)
        return Identity(ANONYMOUS)

    def verify(self, token: str) -> Identity:
        if self.key is None:
            raise UnauthenticatedError("this server accepts no tokens: no JWT key is configured")
        options: dict[str, Any] = {"require": ["sub", "exp"]}
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                options=options,
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise UnauthenticatedError(f"the token is not valid: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise UnauthenticatedError("the token is not valid: 'sub' must be a non-empty string")
        roles = claims.get("roles") or []
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list):
            raise UnauthenticatedError("the token is not valid: 'roles' must be a list")
        principal = Principal(subject, frozenset(r for r in roles if r in KNOWN_ROLES))
        return Identity(principal, float(claims["exp"]))


def _get(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value if isinstance(value, str) else None


def mint_token(
    settings: Settings, subject: str, roles: list[str] | tuple[str, ...] = (), ttl: float = 3600
) -> str:
    """An HS256 token signed with the configured secret, for local use and tests."""
    if not settings.jwt_secret:
        raise UnauthenticatedError("JOBGRAPH_JWT_SECRET is not set, so no token can be minted")
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl)}
    if roles:
        claims["roles"] = list(roles)
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def generate_secret() -> str:
    return secrets.token_urlsafe(48)
