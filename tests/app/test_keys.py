"""Signing keys in the database, JWKS, rotation across processes, and external OIDC mode."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from app.identity.keys import jwk_thumbprint
from app.identity.tokens import claim_at
from tests.app.conftest import TestUser, assert_error, both_backends, services_of

ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@both_backends
def test_jwks_verifies_a_token_with_only_the_public_key(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    user = make_user()
    token = token_for(user)
    jwks = app_client.get("/.well-known/jwks.json").json()
    assert jwks == app_client.get("/api/v1/auth/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    (entry,) = [k for k in jwks["keys"] if k["kid"] == kid]
    assert set(entry) == {"kty", "n", "e", "kid", "alg", "use"}  # public parts only
    assert entry["kid"] == jwk_thumbprint(entry)
    public = jwt.PyJWK(entry).key
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="tsunagu", issuer="tsunagu")
    assert claims["sub"] == user.id
    conf = app_client.get("/.well-known/openid-configuration").json()
    assert conf["issuer"] == "tsunagu" and conf["jwks_uri"].endswith("/.well-known/jwks.json")


@both_backends
def test_processes_share_keys_and_rotation_keeps_old_keys_published(
    app_client: TestClient,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
) -> None:
    second = make_app_client()  # another process on the same database
    user = make_user()
    old_token = token_for(user)
    assert second.get(ME, headers=bearer(old_token)).status_code == 200
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new = services_of(second).keys.rotate()  # e.g. `tsunagu keys rotate` elsewhere
    assert new.kid != old_kid
    services_of(app_client).keys.reload()  # what the periodic re-read does
    kids = [k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids[0] == new.kid and old_kid in kids
    assert app_client.get(ME, headers=bearer(old_token)).status_code == 200
    new_token = token_for(user)
    assert jwt.get_unverified_header(new_token)["kid"] == new.kid
    assert second.get(ME, headers=bearer(new_token)).status_code == 200


@both_backends
def test_unknown_kid_triggers_a_reload(
    app_client: TestClient,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
) -> None:
    """A process that has not yet seen a rotated key picks it up when a token names it."""
    second = make_app_client()
    user = make_user()
    services_of(second).keys.rotate()
    services_of(app_client).keys._loaded_at = 0.0  # the once-a-second guard has elapsed
    token = token_for(user, second)
    assert app_client.get(ME, headers=bearer(token)).status_code == 200


@both_backends
def test_first_start_creates_a_key_that_later_starts_reuse(
    make_app_client: Callable[..., TestClient], tmp_path: Any
) -> None:
    first = make_app_client(jwt_private_key_path=None, data_dir=tmp_path / "fresh")
    kid = services_of(first).keys.current().kid
    again = make_app_client(jwt_private_key_path=None, data_dir=tmp_path / "fresh")
    assert services_of(again).keys.current().kid == kid
    assert again.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid


def test_private_key_file_is_imported(
    make_app_client: Callable[..., TestClient], tmp_path: Any
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client = make_app_client(jwt_private_key_path=pem)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    assert services_of(client).keys.current().kid == jwk_thumbprint(jwk)


# --- external OIDC issuer ---------------------------------------------------------------------

ISSUER = "https://idp.example.test/realms/tsunagu"


@pytest.fixture
def idp() -> Iterator[dict[str, Any]]:
    """A local identity provider: an RSA key and its JWKS served on 127.0.0.1 (no network)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": "idp-key-1", "alg": "RS256", "use": "sig"})
    body = json.dumps({"keys": [jwk]}).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            # OpenID discovery, as Keycloak serves it under the issuer URL.
            documents = {
                "/certs": body,
                "/realm/.well-known/openid-configuration": json.dumps(
                    {"issuer": f"{base}/realm", "jwks_uri": f"{base}/certs"}
                ).encode(),
                # A document naming another issuer than the one it is served for.
                "/impostor/.well-known/openid-configuration": json.dumps(
                    {"issuer": f"{base}/realm", "jwks_uri": f"{base}/certs"}
                ).encode(),
                "/no-issuer/.well-known/openid-configuration": json.dumps(
                    {"jwks_uri": f"{base}/certs"}
                ).encode(),
            }
            self.send_response(200 if self.path in documents else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(documents.get(self.path, b"{}"))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    yield {"key": key, "jwks_url": f"{base}/certs", "base": base, "hits": hits}
    server.shutdown()
    server.server_close()


def _idp_token(idp: dict[str, Any], **over: Any) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": "tsunagu-app",
        "sub": "f1d2d2f9-0000-4000-8000-000000000001",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "email": "ops@example.org",
        "realm_access": {"roles": ["operator", "offline_access"]},
    }
    claims.update(over)
    key = over.pop("_key", None) or idp["key"]
    claims.pop("_key", None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-key-1"})


@pytest.fixture
def oidc_client(make_app_client: Callable[..., TestClient], idp: dict[str, Any]) -> TestClient:
    return make_app_client(
        oidc_issuer=ISSUER,
        oidc_jwks_url=idp["jwks_url"],
        oidc_audience="tsunagu-app",
        oidc_roles_claim="realm_access.roles",
    )


def test_oidc_tokens_verified_against_the_issuer_jwks(
    oidc_client: TestClient, idp: dict[str, Any]
) -> None:
    r = oidc_client.get(ME, headers=bearer(_idp_token(idp)))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["email"] == "ops@example.org"
    assert "operator" in me["roles"]
    # Keys are cached: a second request does not fetch the JWKS again.
    oidc_client.get(ME, headers=bearer(_idp_token(idp)))
    assert idp["hits"].count("/certs") == 1


def test_oidc_roles_gate_access(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    operator = _idp_token(idp)
    assert_error(oidc_client.get("/api/v1/users", headers=bearer(operator)), 403, "forbidden")
    admin = _idp_token(idp, realm_access={"roles": ["admin"]})
    assert oidc_client.get("/api/v1/users", headers=bearer(admin)).status_code == 200


def test_oidc_rejects_bad_tokens(oidc_client: TestClient, idp: dict[str, Any]) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "token_invalid": [
            _idp_token(idp, aud="someone-else"),
            _idp_token(idp, iss="https://evil.example"),
            _idp_token(idp, _key=other_key),
        ],
        "token_expired": [
            _idp_token(
                idp,
                iat=datetime.now(UTC) - timedelta(hours=2),
                exp=datetime.now(UTC) - timedelta(hours=1),
            )
        ],
    }
    for code, tokens in cases.items():
        for token in tokens:
            assert_error(oidc_client.get(ME, headers=bearer(token)), 401, code)


def test_oidc_mode_disables_local_sign_in(
    oidc_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    body = {"email": "x@example.org", "password": "password-123"}
    assert_error(oidc_client.post("/api/v1/auth/signup", json=body), 404, "local_auth_disabled")
    assert_error(oidc_client.post("/api/v1/auth/login", json=body), 404, "local_auth_disabled")
    local = token_for(make_user(client=oidc_client), oidc_client)
    assert_error(oidc_client.get(ME, headers=bearer(local)), 401, "token_invalid")


def test_oidc_issuer_alone_is_enough(
    make_app_client: Callable[..., TestClient], idp: dict[str, Any]
) -> None:
    """Only the issuer URL configured (as for Keycloak): the JWKS is found by discovery."""
    issuer = f"{idp['base']}/realm"
    client = make_app_client(oidc_issuer=issuer + "/", oidc_audience="tsunagu-app")
    r = client.get(ME, headers=bearer(_idp_token(idp, iss=issuer)))
    assert r.status_code == 200, r.text
    assert "/realm/.well-known/openid-configuration" in idp["hits"]
    assert_error(client.get(ME, headers=bearer(_idp_token(idp))), 401, "token_invalid")


def test_oidc_issuer_without_discovery_fails_start_clearly(
    make_app_client: Callable[..., TestClient], idp: dict[str, Any]
) -> None:
    with pytest.raises(RuntimeError, match="TSUNAGU_OIDC_JWKS_URL"):
        make_app_client(oidc_issuer=f"{idp['base']}/no-such-realm")


def test_oidc_discovery_naming_another_issuer_is_refused(
    make_app_client: Callable[..., TestClient], idp: dict[str, Any]
) -> None:
    """#10: the discovery document's ``issuer`` was never checked, so a document served for
    one issuer could hand over another's keys. It must be the configured issuer."""
    with pytest.raises(RuntimeError, match="names issuer"):
        make_app_client(oidc_issuer=f"{idp['base']}/impostor", oidc_audience="tsunagu-app")
    assert "/impostor/.well-known/openid-configuration" in idp["hits"]
    assert "/certs" not in idp["hits"]  # its keys never fetched
    with pytest.raises(RuntimeError, match="issuer"):
        make_app_client(oidc_issuer=f"{idp['base']}/no-issuer", oidc_audience="tsunagu-app")


def test_claim_paths() -> None:
    claims = {"realm_access": {"roles": ["a"]}, "roles": ["b"], "x": 1}
    assert claim_at(claims, "realm_access.roles") == ["a"]
    assert claim_at(claims, "roles") == ["b"]
    assert claim_at(claims, "x.y") is None
    assert claim_at(claims, "missing") is None
