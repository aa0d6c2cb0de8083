"""``jobgraph token`` and the demo token ``jobgraph serve`` prints when no key is set."""

from __future__ import annotations

import os
import re

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from graph.auth.tokens import Authenticator
from graph.commands.cli import DEMO_USER, ensure_session_secret, main
from graph.config.settings import load_settings
from tests.helpers.graphql import TEST_SECRET, make_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no JOBGRAPH_* variable leaks in from the shell."""
    for name in list(os.environ):
        if name.startswith("JOBGRAPH_"):
            monkeypatch.delenv(name)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def decode(token: str, **options: str) -> dict:
    return jwt.decode(token, TEST_SECRET, algorithms=["HS256"], **options)


def test_token_prints_one_token_the_server_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)

    # when
    code, out, err = run(["token", "--sub", "alice"], capsys)

    # then: stdout is the token alone, so `$(jobgraph token ...)` works
    assert (code, err) == (0, "")
    token = out.strip()
    assert out == token + "\n"
    payload = decode(token)
    assert payload["sub"] == "alice"
    assert "roles" not in payload
    assert payload["exp"] - payload["iat"] == 3600
    identity = Authenticator(make_settings()).verify(token)
    assert (identity.principal.user_id, identity.principal.roles) == ("alice", frozenset())


def test_token_with_roles_and_ttl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)

    # when
    code, out, _ = run(["token", "--sub", "w1", "--role", "worker", "--role", "admin",
                        "--role", "worker", "--ttl", "60"], capsys)

    # then
    assert code == 0
    payload = decode(out.strip())
    assert payload["roles"] == ["worker", "admin"]
    assert payload["exp"] - payload["iat"] == 60
    principal = Authenticator(make_settings()).verify(out.strip()).principal
    assert principal.roles == {"worker", "admin"}


def test_token_carries_the_configured_issuer_and_audience(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)
    monkeypatch.setenv("JOBGRAPH_JWT_ISSUER", "https://login.example.com/")
    monkeypatch.setenv("JOBGRAPH_JWT_AUDIENCE", "jobgraph")

    # when
    code, out, _ = run(["token", "--sub", "ivan"], capsys)

    # then
    assert code == 0
    payload = decode(out.strip(), audience="jobgraph", issuer="https://login.example.com/")
    assert (payload["iss"], payload["aud"]) == ("https://login.example.com/", "jobgraph")
    assert Authenticator(load_settings()).verify(out.strip()).principal.user_id == "ivan"


@pytest.mark.parametrize(("argv", "message"), [
    (["token", "--sub", "alice"], "JOBGRAPH_JWT_SECRET is not set"),
    (["token", "--sub", "alice", "--ttl", "0"], "at least one second"),
    (["token", "--sub", "*"], "not a usable user id"),
    (["token", "--sub", " "], "must not be empty"),
], ids=["no-secret", "zero-ttl", "star-sub", "blank-sub"])
def test_token_refused_with_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
    message: str,
) -> None:
    # given
    if message != "JOBGRAPH_JWT_SECRET is not set":
        monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)

    # when
    code, out, err = run(argv, capsys)

    # then
    assert (code, out) == (2, "")
    assert err.startswith("jobgraph: ") and message in err
    assert err.count("\n") == 1


def test_token_unknown_role_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_JWT_SECRET", TEST_SECRET)

    # when
    with pytest.raises(SystemExit) as exited:
        main(["token", "--sub", "alice", "--role", "superuser"])

    # then
    assert exited.value.code == 2
    assert "invalid choice: 'superuser'" in capsys.readouterr().err


# -- `jobgraph serve` without a key --------------------------------------------------------


def test_serve_without_key_generates_a_secret_and_a_demo_token() -> None:
    # given
    environ: dict[str, str] = {}

    # when
    banner = ensure_session_secret(load_settings(), environ, "127.0.0.1", 8000)

    # then: the banner's token verifies with the secret the server processes will read
    assert banner is not None
    secret = environ["JOBGRAPH_JWT_SECRET"]
    assert len(secret) >= 32
    token = re.search(r'"Bearer ([^"]+)"', banner).group(1)  # type: ignore[union-attr]
    identity = Authenticator(load_settings(jwt_secret=secret)).verify(token)
    assert identity.principal.user_id == DEMO_USER
    assert identity.principal.roles == {"worker"}
    assert "http://127.0.0.1:8000/graphql" in banner
    assert secret not in banner


def test_serve_without_key_generates_a_new_secret_each_session() -> None:
    # given
    first: dict[str, str] = {}
    second: dict[str, str] = {}

    # when
    ensure_session_secret(load_settings(), first, "127.0.0.1", 8000)
    ensure_session_secret(load_settings(), second, "127.0.0.1", 8000)

    # then
    assert first["JOBGRAPH_JWT_SECRET"] != second["JOBGRAPH_JWT_SECRET"]


@pytest.mark.parametrize("key", ["secret", "public key"])
def test_serve_with_a_configured_key_prints_no_demo_token(key: str) -> None:
    # given
    if key == "secret":
        settings = load_settings(jwt_secret=TEST_SECRET)
    else:
        pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        settings = load_settings(jwt_public_key=pem.decode())
    environ: dict[str, str] = {}

    # when
    banner = ensure_session_secret(settings, environ, "127.0.0.1", 8000)

    # then
    assert banner is None
    assert environ == {}


def test_serve_with_an_unusable_public_key_stops_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    monkeypatch.setenv("JOBGRAPH_JWT_PUBLIC_KEY", "/nonexistent/jwt.pub")

    # when
    code, _, err = run(["serve", "--port", "1"], capsys)

    # then
    assert code == 2
    assert "JOBGRAPH_JWT_PUBLIC_KEY" in err
    assert "embedded database" not in err
