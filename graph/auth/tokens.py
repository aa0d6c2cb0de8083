"""Who the caller is: a verified JWT, nobody (anonymous), or, in development mode only,
whatever ``X-User-Id`` says.

An invalid or expired token is an error (UNAUTHENTICATED), never anonymous.
Tokens are verified with PyJWT: HS* with ``JOBGRAPH_JWT_SECRET``, RS*/PS*/ES*/EdDSA
with ``JOBGRAPH_JWT_PUBLIC_KEY`` (a PEM text or the path of a PEM file); both may be
configured at once, and the token's ``alg`` header picks the key, never the other way
round. Issuer and audience are checked when configured; ``exp`` and ``sub`` are required.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from graph.config.settings import Settings, SettingsError
from repository.access import ADMIN_ROLE, ANONYMOUS, WORKER_ROLE, Principal
from repository.errors import CodedError, ErrorCode
from repository.models import MAX_USER_ID_LENGTH, PUBLIC_READER

logger = logging.getLogger("jobgraph.auth")

KNOWN_ROLES = frozenset({ADMIN_ROLE, WORKER_ROLE})
USER_HEADER = "x-user-id"
ROLES_HEADER = "x-user-roles"
LEEWAY_SECONDS = 5
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
PUBLIC_KEY_ALGORITHMS: dict[type, tuple[str, ...]] = {
    rsa.RSAPublicKey: ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    ec.EllipticCurvePublicKey: ("ES256", "ES384", "ES512"),
    ed25519.Ed25519PublicKey: ("EdDSA",),
    ed448.Ed448PublicKey: ("EdDSA",),
}
DEV_MODE_WARNING = (
    "JOBGRAPH_DEV_TRUST_USER_HEADER is on: any client can act as any user (and any role) by "
    "sending X-User-Id / X-User-Roles. Never enable this in production."
)


VERIFIED_CACHE_SIZE = 10_000


class UnauthenticatedError(CodedError):
    code = ErrorCode.UNAUTHENTICATED


@dataclass(frozen=True)
class Identity:
    principal: Principal
    expires_at: float | None = None
    """Unix time the token stops being valid; WebSockets are closed then."""


@dataclass(frozen=True)
class VerificationKeys:
    """The keys this server verifies tokens with, and the algorithms each accepts."""

    secret: str | None = None
    secret_algorithms: tuple[str, ...] = ()
    public_key: Any = None
    public_key_algorithms: tuple[str, ...] = ()

    def for_algorithm(self, algorithm: Any) -> Any:
        if self.secret is not None and algorithm in self.secret_algorithms:
            return self.secret
        if self.public_key is not None and algorithm in self.public_key_algorithms:
            return self.public_key
        return None

    @property
    def configured(self) -> bool:
        return self.secret is not None or self.public_key is not None


def load_keys(settings: Settings) -> VerificationKeys:
    """The keys from the settings; a key that cannot be used stops start-up (SettingsError)."""
    allowed = list(dict.fromkeys(settings.jwt_algorithms))
    secret_algorithms = tuple(a for a in allowed if a in HMAC_ALGORITHMS)
    if settings.jwt_secret and not secret_algorithms:
        raise SettingsError("invalid JOBGRAPH_JWT_ALGORITHMS: JOBGRAPH_JWT_SECRET is set but no "
                            f"HMAC algorithm ({', '.join(HMAC_ALGORITHMS)}) is allowed")
    public_key, public_algorithms = None, tuple[str, ...]()
    if settings.jwt_public_key:
        public_key = _load_public_key(settings.jwt_public_key)
        fitting = next(algs for kind, algs in PUBLIC_KEY_ALGORITHMS.items()
                       if isinstance(public_key, kind))
        public_algorithms = tuple(a for a in allowed if a in fitting)
        if not public_algorithms:
            raise SettingsError(
                "invalid JOBGRAPH_JWT_ALGORITHMS: it allows none of the algorithms of the "
                f"JOBGRAPH_JWT_PUBLIC_KEY ({', '.join(fitting)})")
    return VerificationKeys(settings.jwt_secret or None, secret_algorithms, public_key,
                            public_algorithms)


def _load_public_key(value: str) -> Any:
    text = value.strip().replace("\\n", "\n")
    if not text.startswith("-----BEGIN"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise SettingsError("invalid JOBGRAPH_JWT_PUBLIC_KEY: neither a PEM public key nor "
                                "the path of a PEM file")
        text = path.read_text().strip()
    try:
        if "BEGIN CERTIFICATE" in text:
            key: PublicKeyTypes = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            key = load_pem_public_key(text.encode())
    except ValueError:
        raise SettingsError("invalid JOBGRAPH_JWT_PUBLIC_KEY: not a readable PEM public key "
                            "or certificate") from None
    if not isinstance(key, tuple(PUBLIC_KEY_ALGORITHMS)):
        raise SettingsError("invalid JOBGRAPH_JWT_PUBLIC_KEY: only RSA, EC and Ed25519/Ed448 "
                            "keys are supported")
    return key


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = load_keys(settings)
        self._verified: OrderedDict[str, Identity] = OrderedDict()
        if settings.dev_trust_user_header:
            logger.warning(DEV_MODE_WARNING)

    def identify(self, headers: Mapping[str, Any]) -> Identity:
        """From HTTP headers or a WebSocket connection-init payload (names in any case)."""
        authorization = (_get(headers, "authorization") or "").strip()
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
            return self.verify(token.strip())
        if self.settings.dev_trust_user_header:
            user = _get(headers, USER_HEADER)
            if user is not None:
                roles = re.split(r"[\s,]+", _get(headers, ROLES_HEADER) or "")
                return Identity(Principal(_user_id(user.strip(), "X-User-Id"),
                                          frozenset(r for r in roles if r in KNOWN_ROLES)))
        return Identity(ANONYMOUS)

    def verify(self, token: str) -> Identity:
        """A verified token's identity; each token's signature is checked once and its
        identity kept (bounded) until it expires, since workers repeat one token for hours."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at is not None and time.time() < cached.expires_at + LEEWAY_SECONDS:
                self._verified.move_to_end(token)
                return cached
            del self._verified[token]
        identity = self._verify(token)
        self._verified[token] = identity
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    def _verify(self, token: str) -> Identity:
        if not self.keys.configured:
            raise UnauthenticatedError("this server accepts no tokens: no JWT key is configured")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            key = self.keys.for_algorithm(algorithm)
            if key is None:
                raise UnauthenticatedError(
                    f"the token is not valid: this server does not accept algorithm {algorithm!r}")
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],  # a known one: it has a key
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                options={"require": ["sub", "exp"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the token is not valid: {exc}") from None
        subject = claims["sub"]
        if not isinstance(subject, str):
            raise UnauthenticatedError("the token is not valid: 'sub' must be a string")
        return Identity(Principal(_user_id(subject, "the token's 'sub'"), _roles(claims)),
                        float(claims["exp"]))


def _user_id(value: str, source: str) -> str:
    if not value.strip():
        raise UnauthenticatedError(f"{source} must not be empty")
    if value == PUBLIC_READER or len(value) > MAX_USER_ID_LENGTH:
        raise UnauthenticatedError(
            f"{source} is not a usable user id ({PUBLIC_READER!r} or over "
            f"{MAX_USER_ID_LENGTH} characters)")
    return value


def _roles(claims: Mapping[str, Any]) -> frozenset[str]:
    """Known roles from the ``roles`` claim: a list of strings, or one space- or
    comma-separated string. Roles this server does not know are ignored."""
    roles = claims.get("roles")
    if roles is None:
        return frozenset()
    if isinstance(roles, str):
        roles = re.split(r"[\s,]+", roles)
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise UnauthenticatedError("the token is not valid: 'roles' must be a list of strings")
    return frozenset(role for role in roles if role in KNOWN_ROLES)


def _get(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items()
                      if isinstance(k, str) and k.lower() == name), None)
    return value if isinstance(value, str) else None


def mint_token(
    settings: Settings, subject: str, roles: Iterable[str] = (), ttl: float = 3600
) -> str:
    """An HS256 token signed with the configured secret, for local use and tests."""
    if not settings.jwt_secret:
        raise ValueError("JOBGRAPH_JWT_SECRET is not set, so no token can be minted")
    if ttl < 1:
        raise ValueError("the token lifetime (--ttl) must be at least one second")
    roles = list(dict.fromkeys(roles))
    unknown = set(roles) - KNOWN_ROLES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    try:
        _user_id(subject, "the subject (--sub)")
    except UnauthenticatedError as exc:
        raise ValueError(exc.message) from None
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + int(ttl)}
    if roles:
        claims["roles"] = roles
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def generate_secret() -> str:
    return secrets.token_urlsafe(48)
