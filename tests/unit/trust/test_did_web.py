"""did:web over a real HTTP server on 127.0.0.1: bounds, redirects, transport rules."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from onceonly import dids, errors, jose

KEY = jose.generate_private_key(jose.ES256)
SLOW_SECONDS = 2.0


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _send(self, body: bytes, *, length: bool = True, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        did = self.server.did_base  # type: ignore[attr-defined]
        if self.path == "/.well-known/did.json":
            self._send(json.dumps(_doc(did)).encode())
        elif self.path == "/agencies/tax/did.json":
            self._send(json.dumps(_doc(f"{did}:agencies:tax")).encode())
        elif self.path == "/big/did.json":
            self._send(b" " * (70 * 1024) + json.dumps(_doc(f"{did}:big")).encode())
        elif self.path == "/streamed/did.json":
            # No Content-Length: only counting the body while reading can stop it.
            self._send(b" " * (70 * 1024) + b"{}", length=False)
        elif self.path == "/slow/did.json":
            time.sleep(SLOW_SECONDS)
            self._send(json.dumps(_doc(f"{did}:slow")).encode())
        elif self.path == "/redirect/did.json":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/.well-known/did.json")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/mapped/.well-known/did.json":
            self._send(json.dumps(_doc("did:web:registry.example")).encode())
        elif self.path == "/wrong/did.json":
            self._send(json.dumps(_doc("did:web:someone.else")).encode())
        elif self.path == "/dup/did.json":
            self._send(b'{"id": "x", "id": "y"}')
        else:
            self._send(b"{}", status=404)


def _doc(did: str) -> dict[str, Any]:
    return {
        "id": did,
        "verificationMethod": [
            {"id": f"{did}#key-1", "controller": did, "publicKeyJwk": KEY.public().to_jwk()}
        ],
        "assertionMethod": [f"{did}#key-1"],
    }


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the resolver hangs up on slow and oversize answers on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    httpd.did_base = f"did:web:127.0.0.1%3A{port}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"did:web:127.0.0.1%3A{port}", port
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def resolver() -> dids.StandardDidResolver:
    return dids.StandardDidResolver(loopback_http=True, timeout=0.5)


async def test_resolves_well_known_document(
    server: tuple[str, int], resolver: dids.StandardDidResolver
) -> None:
    did, port = server
    assert resolver.web_url(did) == f"http://127.0.0.1:{port}/.well-known/did.json"
    document = await resolver.resolve(did)
    key = document.key("key-1")
    token = jose.sign_compact({"iss": did}, KEY, typ="t")
    assert jose.verify_compact(token, key, expected_typ="t").payload == {"iss": did}


async def test_resolves_path_document(
    server: tuple[str, int], resolver: dids.StandardDidResolver
) -> None:
    did, _ = server
    document = await resolver.resolve(f"{did}:agencies:tax")
    assert document.id == f"{did}:agencies:tax"
    assert len(document.assertion_keys()) == 1


async def test_explicit_base_url_mapping(server: tuple[str, int]) -> None:
    _, port = server
    mapped = dids.StandardDidResolver(
        web_base_urls={
            "registry.example": f"http://127.0.0.1:{port}/mapped",
            "tax.example": f"http://127.0.0.1:{port}/mapped",
        },
        timeout=1,
    )
    document = await mapped.resolve("did:web:registry.example")
    assert document.key("key-1").to_jwk()["x"] == KEY.public().to_jwk()["x"]
    # The same document served for another DID names the wrong id and is refused.
    with pytest.raises(errors.DidResolutionError, match="is not"):
        await mapped.resolve("did:web:tax.example")
    assert mapped.web_url("did:web:registry.example:x") == (
        f"http://127.0.0.1:{port}/mapped/x/did.json"
    )


@pytest.mark.parametrize("segment", ["big", "streamed"])
async def test_oversize_document_refused(
    server: tuple[str, int], resolver: dids.StandardDidResolver, segment: str
) -> None:
    did, _ = server
    with pytest.raises(errors.InputTooLarge):
        await resolver.resolve(f"{did}:{segment}")


async def test_slow_server_times_out(
    server: tuple[str, int], resolver: dids.StandardDidResolver
) -> None:
    did, _ = server
    started = time.monotonic()
    with pytest.raises(errors.DidResolutionError, match="longer than"):
        await resolver.resolve(f"{did}:slow")
    assert time.monotonic() - started < SLOW_SECONDS


@pytest.mark.parametrize(
    ("segment", "error", "match"),
    [
        ("redirect", errors.DidResolutionError, "HTTP 302"),
        ("missing", errors.DidResolutionError, "HTTP 404"),
        ("wrong", errors.DidResolutionError, "is not"),
        ("dup", errors.DuplicateJsonKey, "duplicate"),
    ],
)
async def test_bad_answers_refused(
    server: tuple[str, int],
    resolver: dids.StandardDidResolver,
    segment: str,
    error: type[Exception],
    match: str,
) -> None:
    did, _ = server
    with pytest.raises(error, match=match):
        await resolver.resolve(f"{did}:{segment}")


async def test_nothing_listening_is_a_resolution_error(resolver: dids.StandardDidResolver) -> None:
    with pytest.raises(errors.DidResolutionError, match="failed"):
        await resolver.resolve("did:web:127.0.0.1%3A9")


def test_plain_http_refused_off_loopback() -> None:
    mapped = dids.StandardDidResolver(web_base_urls={"agency.example": "http://agency.example"})
    with pytest.raises(errors.DidResolutionError, match="loopback only"):
        mapped.web_url("did:web:agency.example")
    # Without the flag, a loopback did:web is fetched over https like any other.
    assert dids.StandardDidResolver().web_url("did:web:127.0.0.1%3A8443") == (
        "https://127.0.0.1:8443/.well-known/did.json"
    )
    # The flag never downgrades a public host.
    flagged = dids.StandardDidResolver(loopback_http=True)
    assert flagged.web_url("did:web:agency.example").startswith("https://agency.example/")


@pytest.mark.parametrize(
    "did",
    ["did:web:", "did:web:a.example:..", "did:web:a.example::x", "did:web:a%2Fb", "did:web:u@h"],
)
def test_malformed_did_web(did: str) -> None:
    with pytest.raises(errors.DidResolutionError):
        dids.StandardDidResolver().web_url(did)


async def test_check_agency_did_web(
    server: tuple[str, int], resolver: dids.StandardDidResolver
) -> None:
    from onceonly.trust import Agency, AgencyKey, LocalizedText

    did, _ = server

    def agency(key: jose.PrivateKey) -> Agency:
        return Agency(
            id="https://registry.example",
            name=LocalizedText(de="Amt", en="Office"),
            matrix_user_id="@registry:gov.example",
            dids=(did, f"{did}:agencies:tax"),
            keys=(AgencyKey(jwk={**key.public().to_jwk(), "kid": "listed"}, valid_from=0),),
        )

    matches = await dids.check_agency_dids(agency(KEY), resolver)
    assert matches == {did: ["listed"], f"{did}:agencies:tax": ["listed"]}
    with pytest.raises(errors.DidResolutionError, match="names none"):
        await dids.check_agency_dids(agency(jose.generate_private_key()), resolver)
