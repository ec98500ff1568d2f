"""Each credential source against fakes: exact requests, parsing, failures, refresh, no leaked secrets.

HTTP goes to an ``httpx.MockTransport`` injected as ``http_client``, or to a tiny server on 127.0.0.1
reached through the override variables (which also exercises the short-lived default client).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from taskiq_sqs_http.aws import (
    ContainerCredentialProvider,
    InstanceMetadataCredentialProvider,
    ProfileCredentialProvider,
    RefreshSettings,
    WebIdentityCredentialProvider,
)
from taskiq_sqs_http.aws._credentials import Credentials, parse_expiration
from taskiq_sqs_http.aws._errors import (
    CredentialsError,
    CredentialSourceError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFoundError,
    UnsupportedCredentialSourceError,
)
from taskiq_sqs_http.aws._providers._container import container_full_uri_allowed

KEY = "ASIAEXAMPLEKEYID0001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN//////////"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"
SECRETS = (SECRET, TOKEN, JWT)

Handler = Callable[[httpx.Request], httpx.Response]


def future(minutes: float = 60) -> str:
    when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def creds_json(minutes: float = 60, **extra: object) -> bytes:
    body: dict[str, object] = {
        "AccessKeyId": KEY,
        "SecretAccessKey": SECRET,
        "Token": TOKEN,
        "Expiration": future(minutes),
    }
    body.update(extra)
    return orjson.dumps(body)


class Recorder:
    """A MockTransport that records requests and answers from a queue or a function."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> tuple[httpx.AsyncClient, Recorder]:
        recorder = Recorder(handler)
        client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        clients.append(client)
        return client, recorder

    yield make
    for client in clients:
        await client.aclose()


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"secret leaked in {text!r}"


# -- a tiny HTTP server on 127.0.0.1 -------------------------------------------------------------------

ServerHandler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]


class LocalServer:
    def __init__(self, handler: ServerHandler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> LocalServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((method, path, headers, body))
            status, payload = await self.handler(method, path, headers, body)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.connections.discard(task)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- parse_expiration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-02T03:04:05Z",
        "2030-01-02T03:04:05.123Z",
        "2030-01-02T03:04:05.123456789Z",
        "2030-01-02T03:04:05+00:00",
        "2030-01-02T05:04:05+02:00",
        "2030-01-02T03:04:05",
    ],
)
def test_parse_expiration(text: str) -> None:
    parsed = parse_expiration(text, source="t")
    assert parsed.replace(microsecond=0) == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", ["tomorrow", "2030-13-01T00:00:00Z", 12, None])
def test_parse_expiration_rejects_garbage(value: object) -> None:
    with pytest.raises(CredentialSourceError):
        parse_expiration(value, source="t")


# -- web identity ----------------------------------------------------------------------------------

STS_OK = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:app</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyId>{KEY}</AccessKeyId>
      <SecretAccessKey>{SECRET}</SecretAccessKey>
      <SessionToken>{TOKEN}</SessionToken>
      <Expiration>{{expiration}}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""


def sts_error(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>r-1</RequestId></ErrorResponse>"
    ).encode()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "eks.amazonaws.com" / "serviceaccount" / "token"
    path.parent.mkdir(parents=True)
    path.write_text(JWT)
    return path


@pytest.fixture
def irsa_env(monkeypatch: pytest.MonkeyPatch, token_file: Path) -> None:
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/my-role")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "worker-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


async def test_web_identity_sends_the_exact_sts_request(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    provider = WebIdentityCredentialProvider(http_client=client)
    credentials = await provider.get_credentials()
    assert credentials.access_key_id == KEY
    assert credentials.secret_access_key == SECRET
    assert credentials.session_token == TOKEN
    assert credentials.expiration is not None
    (request,) = rec.requests
    assert request.method == "POST"
    assert str(request.url) == "https://sts.eu-west-1.amazonaws.com/"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded; charset=utf-8"
    assert "authorization" not in request.headers
    assert "x-amz-security-token" not in request.headers
    assert request.content.decode() == (
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
        "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fmy-role"
        f"&RoleSessionName=worker-1&WebIdentityToken={JWT}"
    )
    assert provider.describe() == "credentials from web identity"
    assert_no_secrets(repr(provider), provider.describe(), repr(credentials))


async def test_web_identity_rereads_the_token_file_at_every_refresh(
    irsa_env: None,
    token_file: Path,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    provider = WebIdentityCredentialProvider(http_client=client)
    await provider.get_credentials()
    token_file.write_text("rotated.jwt.token\n")  # noqa: ASYNC240 - tiny file, test only
    provider.invalidate()
    await provider.get_credentials()
    tokens = [dict(parse_qsl(r.content.decode()))["WebIdentityToken"] for r in rec.requests]
    assert tokens == [JWT, "rotated.jwt.token"]


async def test_web_identity_refreshes_before_expiry(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future(5)).encode())
    )
    provider = WebIdentityCredentialProvider(http_client=client)
    await provider.get_credentials()
    await provider.get_credentials()  # 5 minutes left: inside the mandatory window
    assert len(rec.requests) == 2


async def test_web_identity_error_response_is_reported_without_the_token(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    client, rec = client_for(
        lambda r: httpx.Response(400, content=sts_error("InvalidIdentityToken", f"Token {JWT} is expired"))
    )
    provider = WebIdentityCredentialProvider(http_client=client, retry_delay=0)
    with pytest.raises(CredentialSourceError) as info:
        await provider.get_credentials()
    assert "InvalidIdentityToken" in str(info.value)
    assert "HTTP 400" in str(info.value)
    assert_no_secrets(str(info.value))
    assert len(rec.requests) == 1  # a sender error is not retried


async def test_web_identity_retries_idp_communication_errors_and_5xx(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    answers = [
        httpx.Response(400, content=sts_error("IDPCommunicationError", "try again")),
        httpx.Response(503, content=b"<html>busy</html>"),
        httpx.Response(200, content=STS_OK.format(expiration=future()).encode()),
    ]
    client, rec = client_for(lambda r: answers.pop(0))
    provider = WebIdentityCredentialProvider(http_client=client, retry_delay=0)
    assert (await provider.get_credentials()).access_key_id == KEY
    assert len(rec.requests) == 3


async def test_web_identity_gives_up_after_three_timeouts(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, rec = client_for(timeout)
    provider = WebIdentityCredentialProvider(http_client=client, retry_delay=0)
    with pytest.raises(CredentialSourceError, match="timed out"):
        await provider.get_credentials()
    assert len(rec.requests) == 3


@pytest.mark.parametrize(
    "body",
    [
        b"<AssumeRoleWithWebIdentityResponse><unclosed>",
        b"not xml at all",
        b"<AssumeRoleWithWebIdentityResponse/>",
        b"<R><Credentials><AccessKeyId>A</AccessKeyId></Credentials></R>",
    ],
)
async def test_web_identity_malformed_xml(
    irsa_env: None,
    body: bytes,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    client, _ = client_for(lambda r: httpx.Response(200, content=body))
    with pytest.raises(CredentialSourceError):
        await WebIdentityCredentialProvider(http_client=client).get_credentials()


async def test_web_identity_missing_token_file(
    irsa_env: None, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file.unlink()  # noqa: ASYNC240 - test only
    with pytest.raises(CredentialSourceError, match="cannot read token file"):
        await WebIdentityCredentialProvider().get_credentials()


async def test_web_identity_without_role_arn_is_an_error(
    irsa_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ROLE_ARN")
    with pytest.raises(PartialCredentialsError, match="role ARN"):
        await WebIdentityCredentialProvider().get_credentials()


async def test_web_identity_not_configured() -> None:
    with pytest.raises(NoCredentialsError) as info:
        await WebIdentityCredentialProvider().get_credentials()
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in str(info.value)


async def test_web_identity_endpoint_without_region_is_global_and_overridable(
    irsa_env: None,
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.delenv("AWS_REGION")
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    await WebIdentityCredentialProvider(http_client=client).get_credentials()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566")
    await WebIdentityCredentialProvider(http_client=client).get_credentials()
    await WebIdentityCredentialProvider(
        http_client=client, endpoint_url="https://sts.example"
    ).get_credentials()
    assert [str(r.url) for r in rec.requests] == [
        "https://sts.amazonaws.com/",
        "http://127.0.0.1:4566/",
        "https://sts.example/",
    ]


async def test_web_identity_from_profile_keys(
    token_file: Path, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    aws = Path.home() / ".aws"
    aws.mkdir()
    (aws / "config").write_text(
        textwrap.dedent(f"""\
        [default]
        region = ap-northeast-1
        role_arn = arn:aws:iam::123456789012:role/from-profile
        web_identity_token_file = {token_file}
        role_session_name = prof-session
        """)
    )
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    await WebIdentityCredentialProvider(http_client=client).get_credentials()
    (request,) = rec.requests
    assert str(request.url) == "https://sts.ap-northeast-1.amazonaws.com/"
    fields = dict(parse_qsl(request.content.decode()))
    assert fields["RoleArn"] == "arn:aws:iam::123456789012:role/from-profile"
    assert fields["RoleSessionName"] == "prof-session"


async def test_web_identity_default_session_name(
    irsa_env: None,
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.delenv("AWS_ROLE_SESSION_NAME")
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    await WebIdentityCredentialProvider(http_client=client).get_credentials()
    name = dict(parse_qsl(rec.requests[0].content.decode()))["RoleSessionName"]
    assert name.startswith("taskiq-sqs-http-")


# -- profile files and credential_process ----------------------------------------------------------


def write_aws(credentials: str = "", config: str = "") -> Path:
    aws = Path.home() / ".aws"
    aws.mkdir(exist_ok=True)
    if credentials:
        (aws / "credentials").write_text(textwrap.dedent(credentials))
    if config:
        (aws / "config").write_text(textwrap.dedent(config))
    return aws


def write_process_script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "creds.py"
    script.write_text(textwrap.dedent(body))
    return f"{sys.executable} {script}"


async def test_profile_static_keys_from_credentials_file() -> None:
    write_aws(
        credentials=f"""\
        [default]
        aws_access_key_id = {KEY}
        aws_secret_access_key = {SECRET}
        aws_security_token = {TOKEN}
        """,
        config="""\
        [default]
        aws_access_key_id = AKIACONFIG
        aws_secret_access_key = config-secret
        """,
    )
    provider = ProfileCredentialProvider()
    credentials = await provider.get_credentials()
    assert (credentials.access_key_id, credentials.session_token) == (KEY, TOKEN)
    assert provider.describe() == "credentials from shared credentials file (profile default)"
    assert_no_secrets(repr(provider), provider.describe(), repr(credentials))


async def test_profile_static_keys_from_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write_aws(
        config=f"""\
        [profile ci]
        aws_access_key_id = {KEY}
        aws_secret_access_key = {SECRET}
        """
    )
    monkeypatch.setenv("AWS_PROFILE", "ci")
    provider = ProfileCredentialProvider()
    assert (await provider.get_credentials()).access_key_id == KEY
    assert provider.describe() == "credentials from config file (profile ci)"


async def test_profile_keys_are_reread_after_invalidate() -> None:
    aws = write_aws(credentials="[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s\n")
    provider = ProfileCredentialProvider()
    assert (await provider.get_credentials()).access_key_id == "AKIA1"
    (aws / "credentials").write_text("[default]\naws_access_key_id = AKIA2\naws_secret_access_key = s\n")
    assert (await provider.get_credentials()).access_key_id == "AKIA1"
    provider.invalidate()
    assert (await provider.get_credentials()).access_key_id == "AKIA2"


async def test_profile_partial_keys_are_an_error() -> None:
    write_aws(credentials="[default]\naws_access_key_id = AKIAONLY\n")
    with pytest.raises(PartialCredentialsError, match="aws_secret_access_key"):
        await ProfileCredentialProvider().get_credentials()


async def test_credential_process_success_and_refresh_at_expiration(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = write_process_script(
        tmp_path,
        f"""\
        import json, pathlib, sys, datetime
        counter = pathlib.Path({str(counter)!r})
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        assert sys.argv[1:] == ["--flag", "two words"], sys.argv
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
        print(json.dumps({{
            "Version": 1,
            "AccessKeyId": "{KEY[:-1]}" + str(n),
            "SecretAccessKey": {SECRET!r},
            "SessionToken": {TOKEN!r},
            "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }}))
        """,
    )
    write_aws(config=f"[default]\ncredential_process = {command} --flag 'two words'\n")
    provider = ProfileCredentialProvider()
    first = await provider.get_credentials()
    assert first.access_key_id == KEY[:-1] + "1"
    assert first.session_token == TOKEN
    assert first.expiration is not None
    assert provider.describe() == "credentials from credential_process (profile default)"
    # Five minutes left is inside the mandatory window: the process runs again.
    second = await provider.get_credentials()
    assert second.access_key_id == KEY[:-1] + "2"


async def test_credential_process_without_expiration_runs_once(tmp_path: Path) -> None:
    command = write_process_script(
        tmp_path,
        f"""\
        import json
        print(json.dumps({{"Version": 1, "AccessKeyId": "{KEY}", "SecretAccessKey": "{SECRET}"}}))
        """,
    )
    write_aws(config=f"[default]\ncredential_process = {command}\n")
    provider = ProfileCredentialProvider()
    first = await provider.get_credentials()
    assert first.expiration is None and first.session_token is None
    assert await provider.get_credentials() is first


async def test_credential_process_is_not_run_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = write_process_script(
        tmp_path,
        f"""\
        import json, sys
        assert sys.argv[1:] == [";", "touch", {str(marker)!r}], sys.argv
        print(json.dumps({{"Version": 1, "AccessKeyId": "{KEY}", "SecretAccessKey": "{SECRET}"}}))
        """,
    )
    write_aws(config=f"[default]\ncredential_process = {command} ; touch {marker}\n")
    await ProfileCredentialProvider().get_credentials()
    assert not marker.exists()


async def test_credential_process_failure_reports_stderr_not_stdout(tmp_path: Path) -> None:
    command = write_process_script(
        tmp_path,
        f"""\
        import sys
        print("{SECRET}")
        print("token expired, run aws sso login", file=sys.stderr)
        sys.exit(3)
        """,
    )
    write_aws(config=f"[default]\ncredential_process = {command} --password {SECRET}\n")
    with pytest.raises(CredentialSourceError) as info:
        await ProfileCredentialProvider().get_credentials()
    message = str(info.value)
    assert "status 3" in message and "run aws sso login" in message
    assert_no_secrets(message)


@pytest.mark.parametrize(
    ("output", "match"),
    [
        (f"not json {SECRET}", "JSON object"),
        ("[1, 2]", "JSON object"),
        (f'{{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "{SECRET}"}}', "Version 2"),
        (f'{{"Version": 1, "SecretAccessKey": "{SECRET}"}}', "AccessKeyId"),
        (
            f'{{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "{SECRET}", "Expiration": "soon"}}',
            "ISO 8601",
        ),
    ],
)
async def test_credential_process_malformed_output(tmp_path: Path, output: str, match: str) -> None:
    command = write_process_script(tmp_path, f"print({output!r})\n")
    write_aws(config=f"[default]\ncredential_process = {command}\n")
    with pytest.raises(CredentialSourceError, match=match) as info:
        await ProfileCredentialProvider().get_credentials()
    assert_no_secrets(str(info.value))


async def test_credential_process_missing_program_and_timeout(tmp_path: Path) -> None:
    write_aws(config="[default]\ncredential_process = /nonexistent/helper --x\n")
    with pytest.raises(CredentialSourceError, match="cannot start"):
        await ProfileCredentialProvider().get_credentials()
    command = write_process_script(tmp_path, "import time\ntime.sleep(30)\n")
    write_aws(config=f"[default]\ncredential_process = {command}\n")
    with pytest.raises(CredentialSourceError, match="did not finish"):
        await ProfileCredentialProvider(process_timeout=0.3).get_credentials()


async def test_credential_process_unbalanced_quotes() -> None:
    write_aws(config="[default]\ncredential_process = helper 'unterminated\n")
    with pytest.raises(CredentialSourceError, match="split"):
        await ProfileCredentialProvider().get_credentials()


@pytest.mark.parametrize(
    ("config", "feature"),
    [
        ("sso_start_url = https://x.awsapps.com/start\nsso_region = us-east-1\n", "SSO"),
        ("sso_session = corp\nsso_account_id = 1\n", "SSO"),
        ("role_arn = arn:aws:iam::1:role/r\nsource_profile = base\n", "source_profile"),
        ("role_arn = arn:aws:iam::1:role/r\ncredential_source = Ec2InstanceMetadata\n", "assume role"),
        ("login_session = arn:aws:iam::1:user/u\n", "login_session"),
    ],
)
async def test_unsupported_profile_features_fail_loudly(config: str, feature: str) -> None:
    # Static keys in the credentials file must not be used instead: that would be another identity.
    write_aws(
        credentials=f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n",
        config="[default]\n" + config,
    )
    with pytest.raises(UnsupportedCredentialSourceError) as info:
        await ProfileCredentialProvider().get_credentials()
    assert feature in str(info.value)
    assert "'default'" in str(info.value)
    assert info.value.profile == "default"


async def test_profile_chosen_by_env_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    write_aws(credentials=f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_PROFILE", "typo")
    with pytest.raises(ProfileNotFoundError, match=r"'typo'.*AWS_PROFILE"):
        await ProfileCredentialProvider().get_credentials()


async def test_missing_default_profile_is_just_not_found() -> None:
    with pytest.raises(NoCredentialsError) as info:
        await ProfileCredentialProvider().get_credentials()
    assert "shared credentials file" in str(info.value) and "config file" in str(info.value)


async def test_profile_web_identity_is_delegated(
    token_file: Path, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    write_aws(
        config=f"""\
        [profile irsa]
        role_arn = arn:aws:iam::123456789012:role/r
        web_identity_token_file = {token_file}
        """
    )
    client, rec = client_for(
        lambda r: httpx.Response(200, content=STS_OK.format(expiration=future()).encode())
    )
    provider = ProfileCredentialProvider("irsa", http_client=client)
    assert (await provider.get_credentials()).access_key_id == KEY
    assert provider.describe() == "credentials from web identity (profile irsa)"
    assert len(rec.requests) == 1


# -- container -------------------------------------------------------------------------------------


async def test_container_relative_uri_exact_request(
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc-123")
    client, rec = client_for(lambda r: httpx.Response(200, content=creds_json()))
    provider = ContainerCredentialProvider(http_client=client)
    credentials = await provider.get_credentials()
    assert (credentials.access_key_id, credentials.session_token) == (KEY, TOKEN)
    (request,) = rec.requests
    assert request.method == "GET"
    assert str(request.url) == "http://169.254.170.2/v2/credentials/abc-123"
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers
    assert provider.describe() == "credentials from container endpoint"
    assert_no_secrets(repr(provider), repr(credentials))


async def test_container_full_uri_with_token_variable(
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9001/2021-06/creds")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic snapstart-token")
    client, rec = client_for(lambda r: httpx.Response(200, content=creds_json()))
    await ContainerCredentialProvider(http_client=client).get_credentials()
    (request,) = rec.requests
    assert str(request.url) == "http://127.0.0.1:9001/2021-06/creds"
    assert request.headers["authorization"] == "Basic snapstart-token"


async def test_container_token_file_is_reread_on_every_refresh(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    token = tmp_path / "eks-pod-identity-token"
    token.write_text("first-token")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file-is-set")
    client, rec = client_for(lambda r: httpx.Response(200, content=creds_json(minutes=5)))
    provider = ContainerCredentialProvider(http_client=client)
    await provider.get_credentials()
    token.write_text("second-token\n")
    await provider.get_credentials()  # 5 min left: mandatory refresh
    assert [r.headers["authorization"] for r in rec.requests] == ["first-token", "second-token"]


@pytest.mark.parametrize("token", ["abc\r\nX-Injected: 1", "abc\ndef", "abc\rdef"])
async def test_container_token_with_cr_or_lf_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    token: str,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://localhost/creds")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
    client, rec = client_for(lambda r: httpx.Response(200, content=creds_json()))
    with pytest.raises(CredentialSourceError, match="CR or LF") as info:
        await ContainerCredentialProvider(http_client=client).get_credentials()
    assert token not in str(info.value)
    assert rec.requests == []


async def test_container_token_file_with_embedded_newline_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("abc\nX-Injected: 1\n")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://localhost/creds")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    with pytest.raises(CredentialSourceError, match="CR or LF"):
        await ContainerCredentialProvider().get_credentials()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://creds.example.com/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://127.1.2.3/x", True),
        ("http://localhost/x", True),
        ("http://[::1]:80/x", True),
        ("http://169.254.170.2/x", True),
        ("http://169.254.170.23/v1/credentials", True),
        ("http://[fd00:ec2::23]/v1/credentials", True),
        ("http://169.254.169.254/x", False),
        ("http://example.com/x", False),
        ("http://10.0.0.1/x", False),
        ("http://localhost.evil.com/x", False),
        ("ftp://127.0.0.1/x", False),
        ("http:///nohost", False),
    ],
)
def test_container_full_uri_allow_list(url: str, allowed: bool) -> None:
    assert container_full_uri_allowed(url) is allowed


async def test_container_refused_full_uri_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds")
    with pytest.raises(CredentialSourceError, match="refused"):
        await ContainerCredentialProvider().get_credentials()


async def test_container_retries_then_fails_on_http_errors(
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")
    client, rec = client_for(lambda r: httpx.Response(500, content=b"agent not ready"))
    with pytest.raises(CredentialSourceError, match=r"HTTP 500.*3 attempts"):
        await ContainerCredentialProvider(http_client=client, retry_delay=0).get_credentials()
    assert len(rec.requests) == 3


async def test_container_recovers_within_its_attempts(
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")
    answers = [httpx.Response(503), httpx.Response(200, content=creds_json())]
    client, rec = client_for(lambda r: answers.pop(0))
    provider = ContainerCredentialProvider(http_client=client, retry_delay=0)
    assert (await provider.get_credentials()).access_key_id == KEY
    assert len(rec.requests) == 2


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        orjson.dumps({"AccessKeyId": KEY, "Token": TOKEN}),
        orjson.dumps({"AccessKeyId": KEY, "SecretAccessKey": SECRET, "Expiration": "later"}),
    ],
)
async def test_container_malformed_json(
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/creds")
    client, _ = client_for(lambda r: httpx.Response(200, content=body))
    with pytest.raises(CredentialSourceError) as info:
        await ContainerCredentialProvider(http_client=client, retry_delay=0).get_credentials()
    assert_no_secrets(str(info.value))


async def test_container_against_a_local_server_with_the_default_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        return 200, creds_json()

    async with LocalServer(handler) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url + "/get-credentials")
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "local-token")
        credentials = await ContainerCredentialProvider().get_credentials()
    assert credentials.access_key_id == KEY
    ((method, path, headers, _),) = server.requests
    assert (method, path, headers["authorization"]) == ("GET", "/get-credentials", "local-token")


async def test_container_timeout_against_a_silent_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        await asyncio.sleep(5)
        return 200, b""

    async with LocalServer(handler) as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url + "/slow")
        provider = ContainerCredentialProvider(timeout=0.2, retry_delay=0)
        with pytest.raises(CredentialSourceError, match="timed out"):
            await provider.get_credentials()
        assert len(server.requests) == 3


async def test_container_not_configured() -> None:
    with pytest.raises(NoCredentialsError, match="AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        await ContainerCredentialProvider().get_credentials()


# -- instance metadata -----------------------------------------------------------------------------


class FakeIMDS:
    """Answers like IMDSv2; knobs for the failure modes."""

    def __init__(self, minutes: float = 360) -> None:
        self.minutes = minutes
        self.token_status = 200
        self.role_status = 200
        self.creds_body: bytes | None = None
        self.reject_token_once = False
        self.tokens_issued = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT" and path == "/latest/api/token":
            if self.token_status != 200:
                return httpx.Response(self.token_status)
            self.tokens_issued += 1
            return httpx.Response(200, text=f"imds-session-token-{self.tokens_issued}")
        if self.token_status == 200:
            if request.headers.get("x-aws-ec2-metadata-token") is None:
                return httpx.Response(401)
            if self.reject_token_once:
                self.reject_token_once = False
                return httpx.Response(401)
        if path == "/latest/meta-data/iam/security-credentials/":
            return httpx.Response(self.role_status, text="my-instance-role\n")
        if path == "/latest/meta-data/iam/security-credentials/my-instance-role":
            body = self.creds_body
            if body is None:
                body = creds_json(self.minutes, Code="Success", Type="AWS-HMAC", LastUpdated=future(-1))
            return httpx.Response(200, content=body)
        return httpx.Response(404)


@pytest.fixture
def imds_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")


async def test_imds_disabled_by_default_in_tests() -> None:
    with pytest.raises(NoCredentialsError, match="AWS_EC2_METADATA_DISABLED"):
        await InstanceMetadataCredentialProvider().get_credentials()


async def test_imds_v2_exact_sequence_and_token_caching(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    imds = FakeIMDS(minutes=5)  # short lifetime so the second call refreshes
    client, rec = client_for(imds)
    provider = InstanceMetadataCredentialProvider(
        http_client=client, refresh=RefreshSettings(extension_jitter=(timedelta(0), timedelta(0)))
    )
    credentials = await provider.get_credentials()
    assert (credentials.access_key_id, credentials.session_token) == (KEY, TOKEN)
    put, roles, role = rec.requests
    assert (put.method, str(put.url)) == ("PUT", "http://169.254.169.254/latest/api/token")
    assert put.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    assert (roles.method, str(roles.url)) == (
        "GET",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    )
    assert roles.headers["x-aws-ec2-metadata-token"] == "imds-session-token-1"
    assert str(role.url).endswith("/security-credentials/my-instance-role")
    assert role.headers["x-aws-ec2-metadata-token"] == "imds-session-token-1"
    # Handed out inside the refresh window: expiry pushed out locally instead of asking again.
    assert credentials.expiration is not None
    assert credentials.expiration - datetime.now(timezone.utc) > timedelta(minutes=14)
    assert await provider.get_credentials() is credentials
    provider.invalidate()
    await provider.get_credentials()
    assert [r.method for r in rec.requests[3:]] == ["GET", "GET"]  # the session token was cached
    assert provider.describe() == "credentials from instance metadata"
    assert_no_secrets(repr(provider), repr(credentials))


async def test_imds_falls_back_to_v1_when_the_token_put_is_refused(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    imds = FakeIMDS()
    imds.token_status = 403
    client, rec = client_for(imds)
    await InstanceMetadataCredentialProvider(http_client=client).get_credentials()
    gets = [r for r in rec.requests if r.method == "GET"]
    assert len(gets) == 2
    assert all("x-aws-ec2-metadata-token" not in r.headers for r in gets)


async def test_imds_v1_fallback_can_be_disabled(
    imds_enabled: None,
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
    imds = FakeIMDS()
    imds.token_status = 404
    client, _ = client_for(imds)
    with pytest.raises(CredentialSourceError, match="IMDSv1 is disabled"):
        await InstanceMetadataCredentialProvider(http_client=client).get_credentials()


async def test_imds_gets_a_new_token_after_401(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    imds = FakeIMDS()
    imds.reject_token_once = True
    client, _ = client_for(imds)
    await InstanceMetadataCredentialProvider(http_client=client).get_credentials()
    assert imds.tokens_issued == 2


async def test_imds_without_a_role_is_not_found(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    imds = FakeIMDS()
    imds.role_status = 404
    client, _ = client_for(imds)
    with pytest.raises(NoCredentialsError, match="no IAM role"):
        await InstanceMetadataCredentialProvider(http_client=client).get_credentials()


async def test_imds_unreachable_is_not_found(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client, rec = client_for(unreachable)
    with pytest.raises(NoCredentialsError, match=r"instance metadata at http://169\.254\.169\.254"):
        await InstanceMetadataCredentialProvider(http_client=client).get_credentials()
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        orjson.dumps({"Code": "Failure", "Message": "no"}),
        orjson.dumps({"Code": "Success", "AccessKeyId": KEY}),
    ],
)
async def test_imds_malformed_credentials(
    imds_enabled: None,
    body: bytes,
    client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]],
) -> None:
    imds = FakeIMDS()
    imds.creds_body = body
    client, _ = client_for(imds)
    with pytest.raises(CredentialSourceError):
        await InstanceMetadataCredentialProvider(http_client=client).get_credentials()


async def test_imds_outage_after_success_keeps_the_old_credentials(
    imds_enabled: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    imds = FakeIMDS(minutes=60)
    client, _ = client_for(imds)
    provider = InstanceMetadataCredentialProvider(http_client=client)
    first = await provider.get_credentials()
    imds.role_status = 500
    provider.invalidate()
    again = await provider.get_credentials()
    assert again.access_key_id == first.access_key_id


async def test_imds_against_a_local_server_via_endpoint_override(
    imds_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeIMDS()

    async def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        request = httpx.Request(method, "http://x" + path, headers=headers)
        response = fake(request)
        return response.status_code, response.content

    async with LocalServer(handler) as server:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url + "/")
        credentials = await InstanceMetadataCredentialProvider().get_credentials()
    assert credentials.access_key_id == KEY
    assert [(m, p) for m, p, _, _ in server.requests] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/my-instance-role"),
    ]


async def test_imds_connection_refused_is_fast_and_not_found(
    imds_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(NoCredentialsError, match="instance metadata"):
        await InstanceMetadataCredentialProvider().get_credentials()


# -- no secret anywhere ----------------------------------------------------------------------------


async def test_errors_and_descriptions_never_contain_secrets(
    irsa_env: None, client_for: Callable[[Handler], tuple[httpx.AsyncClient, Recorder]]
) -> None:
    client, _ = client_for(lambda r: httpx.Response(500, content=creds_json()))
    providers = [
        WebIdentityCredentialProvider(http_client=client, retry_delay=0),
        ProfileCredentialProvider(),
        ContainerCredentialProvider(http_client=client),
        InstanceMetadataCredentialProvider(http_client=client),
    ]
    for provider in providers:
        assert_no_secrets(repr(provider), provider.describe())
        try:
            await provider.get_credentials()
        except CredentialsError as exc:
            assert_no_secrets(str(exc), repr(exc))
    assert_no_secrets(repr(Credentials(KEY, SECRET, TOKEN)))


async def test_environment_credential_expiration() -> None:
    """AWS_CREDENTIAL_EXPIRATION rides on the credentials; expired or malformed values are clear errors."""
    from taskiq_sqs_http.aws import CredentialsError, EnvironmentCredentialProvider

    base = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret-value", "AWS_SESSION_TOKEN": "tok"}
    fresh = EnvironmentCredentialProvider({**base, "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"})
    credentials = await fresh.get_credentials()
    assert credentials.expiration is not None and credentials.expiration.year == 2099
    expired = EnvironmentCredentialProvider({**base, "AWS_CREDENTIAL_EXPIRATION": "2001-01-01T00:00:00Z"})
    with pytest.raises(CredentialsError, match="expired at 2001") as info:
        await expired.get_credentials()
    assert "secret-value" not in str(info.value) and "tok" not in str(info.value)
    with pytest.raises(CredentialsError, match="expected an ISO 8601 time"):
        await EnvironmentCredentialProvider({**base, "AWS_CREDENTIAL_EXPIRATION": "soon"}).get_credentials()
