"""Identity: bearer JWTs (HS256 secret, RS256/ES256 public key), anonymous callers,
the development header mode, and ``viewer``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from graph.auth.tokens import Authenticator, UnauthenticatedError, load_keys, mint_token
from graph.config.settings import Settings, SettingsError, load_settings
from graph.server.app import create_app
from tests.helpers.graphql import TEST_SECRET, Api, Caller, make_settings

VIEWER = "{ viewer { userId roles anonymous } }"
CREATE_JOB = 'mutation { createJob(input: {jobType: "pdf"}) { jobId } }'
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256-987654"
ISSUER, AUDIENCE = "https://login.example.com/", "jobgraph"


def claims(subject: str = "alice", *, ttl: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": subject, "iat": now, "exp": now + ttl, **extra}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def public_pem(private_key: Any) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


ServeApi = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def serve(mongo_uri: str, database_name: str) -> ServeApi:
    """An API on its own settings: ``serve(jwt_public_key=..., jwt_secret=None)``."""

    @asynccontextmanager
    async def running(**overrides: Any) -> AsyncIterator[Api]:
        settings = load_settings(**{"jwt_secret": TEST_SECRET, "log_format": "text",
                                    "database": database_name, **overrides})
        application = create_app(settings, mongodb_uri=mongo_uri)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Api(client, settings)

    return running


async def viewer(api: Api, headers: dict[str, str]) -> httpx.Response:
    return await api.post(VIEWER, as_=Caller(), headers=headers)


def assert_unauthenticated(response: httpx.Response, message: str | None = None) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert "data" not in body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    if message is not None:
        assert message in body["errors"][0]["message"]


# -- viewer and HS256 ----------------------------------------------------------------


async def test_viewer_without_token_is_anonymous(api: Api) -> None:
    # when: no Authorization header, or an empty one
    data = await api.data(VIEWER, as_=Caller())
    empty = await viewer(api, {"Authorization": ""})

    # then
    assert data == {"viewer": {"userId": None, "roles": [], "anonymous": True}}
    assert empty.json() == {"data": data}


async def test_viewer_with_token_shows_subject_and_known_roles(api: Api) -> None:
    # given: a token that also carries a role this server does not know
    token = jwt.encode(claims("carol", roles=["worker", "auditor", "admin"]), TEST_SECRET)

    # when
    response = await viewer(api, bearer(token))

    # then
    assert response.json() == {"data": {"viewer": {
        "userId": "carol", "roles": ["admin", "worker"], "anonymous": False}}}


async def test_request_with_expired_token_is_refused_not_anonymous(api: Api) -> None:
    # given: expired beyond the leeway
    token = jwt.encode(claims(ttl=-60), TEST_SECRET)

    # when: even a query an anonymous caller could make
    response = await viewer(api, bearer(token))

    # then
    assert_unauthenticated(response, "the token has expired")


async def test_request_with_token_signed_by_another_key_is_refused(api: Api) -> None:
    # given
    token = jwt.encode(claims(), OTHER_SECRET)

    # when
    response = await api.post(CREATE_JOB, as_=Caller(), headers=bearer(token))

    # then
    assert_unauthenticated(response, "Signature verification failed")


@pytest.mark.parametrize("authorization", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer not-a-jwt",
                                           "Token abc.def.ghi", "Bearer  "])
async def test_request_with_malformed_authorization_is_refused(
    api: Api, authorization: str
) -> None:
    # when
    response = await viewer(api, {"Authorization": authorization})

    # then
    assert_unauthenticated(response)


async def test_request_user_header_is_ignored_without_dev_mode(api: Api) -> None:
    # given
    headers = {"X-User-Id": "mallory", "X-User-Roles": "admin"}

    # when
    who = await viewer(api, headers)
    create = await api.post(CREATE_JOB, as_=Caller(), headers=headers)

    # then: anonymous, who may not write
    assert who.json()["data"]["viewer"] == {"userId": None, "roles": [], "anonymous": True}
    assert create.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# -- RS256 / ES256 with a public key ------------------------------------------------


async def test_request_rs256_token_is_verified_with_the_public_key(
    serve: ServeApi, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    # given: a server that knows only the public key
    async with serve(jwt_secret=None, jwt_public_key=public_pem(rsa_key)) as api:
        good = jwt.encode(claims("rita", roles=["worker"]), rsa_key, algorithm="RS256")
        other_key = jwt.encode(claims("rita"), other_rsa_key, algorithm="RS256")
        expired = jwt.encode(claims("rita", ttl=-60), rsa_key, algorithm="RS256")
        hmac = jwt.encode(claims("rita"), TEST_SECRET, algorithm="HS256")
        wrong_kind = jwt.encode(claims("rita"), ec_key, algorithm="ES256")

        # when
        accepted = await viewer(api, bearer(good))
        refused = {name: await viewer(api, bearer(token)) for name, token in (
            ("other key", other_key), ("expired", expired), ("hmac", hmac),
            ("ec", wrong_kind))}

    # then
    assert accepted.json()["data"]["viewer"] == {
        "userId": "rita", "roles": ["worker"], "anonymous": False}
    assert_unauthenticated(refused["other key"], "Signature verification failed")
    assert_unauthenticated(refused["expired"], "the token has expired")
    assert_unauthenticated(refused["hmac"], "does not accept algorithm 'HS256'")
    assert_unauthenticated(refused["ec"], "does not accept algorithm 'ES256'")


async def test_request_es256_token_is_verified_with_the_public_key(
    serve: ServeApi, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # given
    other = ec.generate_private_key(ec.SECP256R1())
    async with serve(jwt_secret=None, jwt_public_key=public_pem(ec_key)) as api:
        # when
        accepted = await viewer(api, bearer(
            jwt.encode(claims("erin"), ec_key, algorithm="ES256")))
        refused = await viewer(api, bearer(jwt.encode(claims("erin"), other, algorithm="ES256")))

    # then
    assert accepted.json()["data"]["viewer"]["userId"] == "erin"
    assert_unauthenticated(refused, "Signature verification failed")


def test_verify_public_key_used_as_hmac_secret_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    # given: the classic algorithm confusion, signing HS256 with the public key's PEM
    pem = public_pem(rsa_key)
    authenticator = Authenticator(load_settings(jwt_public_key=pem))
    forged = _hs256_with_raw_key(pem)

    # when / then
    with pytest.raises(UnauthenticatedError, match="does not accept algorithm 'HS256'"):
        authenticator.verify(forged)


def _hs256_with_raw_key(key: str) -> str:
    """HS256 over the given bytes, bypassing PyJWT's refusal to use a PEM as a secret."""

    def segment(value: bytes) -> bytes:
        return base64.urlsafe_b64encode(value).rstrip(b"=")

    header = segment(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = segment(json.dumps(claims("root", roles=["admin"])).encode())
    signature = hmac.new(key.encode(), header + b"." + payload, hashlib.sha256).digest()
    return b".".join([header, payload, segment(signature)]).decode()


async def test_request_with_secret_and_public_key_accepts_both_kinds(
    serve: ServeApi, rsa_key: rsa.RSAPrivateKey
) -> None:
    # given
    async with serve(jwt_public_key=public_pem(rsa_key)) as api:
        # when
        from_identity_provider = await viewer(api, bearer(
            jwt.encode(claims("idp-user"), rsa_key, algorithm="RS256")))
        from_local_cli = await viewer(api, bearer(mint_token(api.settings, "cli-user")))

    # then
    assert from_identity_provider.json()["data"]["viewer"]["userId"] == "idp-user"
    assert from_local_cli.json()["data"]["viewer"]["userId"] == "cli-user"


# -- issuer and audience ----------------------------------------------------------------


async def test_request_issuer_and_audience_are_checked_when_configured(
    serve: ServeApi,
) -> None:
    # given
    async with serve(jwt_issuer=ISSUER, jwt_audience=AUDIENCE) as api:
        tokens = {
            "minted": mint_token(api.settings, "ivan"),
            "both": jwt.encode(claims("ivan", iss=ISSUER, aud=[AUDIENCE, "other"]), TEST_SECRET),
            "no issuer": jwt.encode(claims("ivan", aud=AUDIENCE), TEST_SECRET),
            "wrong issuer": jwt.encode(claims("ivan", iss="https://evil/", aud=AUDIENCE),
                                       TEST_SECRET),
            "no audience": jwt.encode(claims("ivan", iss=ISSUER), TEST_SECRET),
            "wrong audience": jwt.encode(claims("ivan", iss=ISSUER, aud="billing"), TEST_SECRET),
        }

        # when
        responses = {name: await viewer(api, bearer(token)) for name, token in tokens.items()}

    # then
    for name in ("minted", "both"):
        assert responses[name].json()["data"]["viewer"]["userId"] == "ivan", name
    assert_unauthenticated(responses["no issuer"], '"iss"')
    assert_unauthenticated(responses["wrong issuer"], "Invalid issuer")
    assert_unauthenticated(responses["no audience"], '"aud"')
    assert_unauthenticated(responses["wrong audience"], "Audience doesn't match")


# -- development mode --------------------------------------------------------------------


async def test_dev_mode_trusts_the_user_header_and_logs_a_warning(
    serve: ServeApi, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    caplog.set_level(logging.WARNING, logger="jobgraph.auth")
    async with serve(dev_trust_user_header=True) as api:
        # when
        trusted = await viewer(api, {"X-User-Id": "dev", "X-User-Roles": "worker, root"})
        nobody = await viewer(api, {})
        token_wins = await viewer(api, {"X-User-Id": "dev", **bearer(
            mint_token(api.settings, "alice"))})
        bad_token = await viewer(api, {"X-User-Id": "dev", **bearer("not-a-jwt")})
        bad_user = await viewer(api, {"X-User-Id": "*"})

    # then
    warnings = [record for record in caplog.records
                if record.name == "jobgraph.auth" and record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "X-User-Id" in warnings[0].getMessage()
    assert "production" in warnings[0].getMessage()
    assert trusted.json()["data"]["viewer"] == {
        "userId": "dev", "roles": ["worker"], "anonymous": False}
    assert nobody.json()["data"]["viewer"]["anonymous"] is True
    assert token_wins.json()["data"]["viewer"]["userId"] == "alice"
    assert_unauthenticated(bad_token)
    assert_unauthenticated(bad_user, "X-User-Id is not a usable user id")


def test_dev_mode_off_logs_no_warning(caplog: pytest.LogCaptureFixture, mongo_uri: str) -> None:
    # given
    caplog.set_level(logging.WARNING, logger="jobgraph.auth")

    # when
    create_app(make_settings(), mongodb_uri=mongo_uri)

    # then
    assert [record for record in caplog.records if record.name == "jobgraph.auth"] == []


# -- claims, one by one (no HTTP needed) ---------------------------------------------------

HS = Authenticator(make_settings())


@pytest.mark.parametrize(("payload", "message"), [
    ({"exp": int(time.time()) + 300}, '"sub"'),
    ({"sub": "alice"}, '"exp"'),
    (claims(""), "must not be empty"),
    (claims("   "), "must not be empty"),
    (claims("*"), "not a usable user id"),
    (claims("u" * 201), "not a usable user id"),
    ({**claims(), "sub": 42}, "Subject must be a string"),
    (claims(roles=7), "'roles' must be a list of strings"),
    (claims(roles=["admin", {"name": "worker"}]), "'roles' must be a list of strings"),
    (claims(nbf=int(time.time()) + 3600), "not yet valid"),
    (claims(aud="someone-else"), "Invalid audience"),
], ids=["no-sub", "no-exp", "empty-sub", "blank-sub", "star-sub", "long-sub", "number-sub",
        "number-roles", "object-role", "not-yet-valid", "unexpected-audience"])
def test_verify_refuses_bad_claims(payload: dict[str, Any], message: str) -> None:
    # given
    token = jwt.encode(payload, TEST_SECRET)

    # when / then
    with pytest.raises(UnauthenticatedError, match=message):
        HS.verify(token)


def test_verify_refuses_an_unsigned_token() -> None:
    # given
    token = jwt.encode(claims(roles=["admin"]), None, algorithm="none")

    # when / then
    with pytest.raises(UnauthenticatedError, match="does not accept algorithm 'none'"):
        HS.verify(token)


@pytest.mark.parametrize(("roles", "expected"), [
    (None, set()),
    ("admin", {"admin"}),
    ("admin worker", {"admin", "worker"}),
    ("worker,admin", {"admin", "worker"}),
    (["worker", "billing"], {"worker"}),
    ([], set()),
], ids=["absent", "one-string", "space-separated", "comma-separated", "list", "empty"])
def test_verify_reads_the_roles_claim(roles: Any, expected: set[str]) -> None:
    # given
    payload = claims("dora") if roles is None else claims("dora", roles=roles)

    # when
    identity = HS.verify(jwt.encode(payload, TEST_SECRET))

    # then
    assert identity.principal.user_id == "dora"
    assert identity.principal.roles == expected
    assert identity.expires_at == payload["exp"]


def test_verify_without_any_key_configured_refuses_tokens() -> None:
    # given
    authenticator = Authenticator(load_settings(jwt_secret=None, jwt_public_key=None))

    # when / then
    with pytest.raises(UnauthenticatedError, match="no JWT key is configured"):
        authenticator.verify(jwt.encode(claims(), TEST_SECRET))
    assert authenticator.identify({}).principal.is_anonymous


# -- key configuration ------------------------------------------------------------------


def test_settings_public_key_from_a_file_or_with_escaped_newlines(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    # given
    pem = public_pem(rsa_key)
    key_file = tmp_path / "jwt.pub"
    key_file.write_text(pem)
    token = jwt.encode(claims("fay"), rsa_key, algorithm="RS256")

    # when
    from_file = Authenticator(load_settings(jwt_public_key=str(key_file)))
    escaped = Authenticator(load_settings(jwt_public_key=pem.replace("\n", "\\n")))

    # then
    assert from_file.verify(token).principal.user_id == "fay"
    assert escaped.verify(token).principal.user_id == "fay"
    assert from_file.keys.public_key_algorithms == ("RS256",)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"jwt_public_key": "not a key"}, "JOBGRAPH_JWT_PUBLIC_KEY"),
    ({"jwt_public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
     "not a readable PEM"),
    ({"jwt_public_key": "RSA", "jwt_algorithms": "ES256"}, "JOBGRAPH_JWT_ALGORITHMS"),
    ({"jwt_secret": TEST_SECRET, "jwt_algorithms": "RS256"}, "JOBGRAPH_JWT_ALGORITHMS"),
], ids=["not-pem", "bad-pem", "no-fitting-algorithm", "secret-without-hmac"])
def test_settings_unusable_key_stops_start_up(
    overrides: dict[str, Any], message: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    # given
    if overrides.get("jwt_public_key") == "RSA":
        overrides = {**overrides, "jwt_public_key": public_pem(rsa_key)}
    settings: Settings = load_settings(**overrides)

    # when / then
    with pytest.raises(SettingsError, match=message):
        load_keys(settings)


def test_verified_tokens_are_remembered_until_they_expire() -> None:
    import time as clock

    import jwt as pyjwt

    from graph.auth.tokens import Authenticator, Identity, UnauthenticatedError, mint_token
    from repository.access import Principal
    from tests.helpers.graphql import make_settings

    settings = make_settings()
    authenticator = Authenticator(settings)
    token = mint_token(settings, "alice")
    # a good token is verified once, then served from memory
    assert authenticator.verify(token) is authenticator.verify(token)
    # a remembered identity past its expiry is never served: the token is checked again
    expired = pyjwt.encode({"sub": "alice", "exp": int(clock.time()) - 60},
                           settings.jwt_secret, algorithm="HS256")
    authenticator._verified[expired] = Identity(Principal("alice"), clock.time() - 60)
    with pytest.raises(UnauthenticatedError, match="expired"):
        authenticator.verify(expired)
    # and a bad token is never remembered
    with pytest.raises(UnauthenticatedError):
        authenticator.verify(token + "x")
    assert token + "x" not in authenticator._verified
