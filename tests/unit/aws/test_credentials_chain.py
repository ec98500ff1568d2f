"""default_credential_provider: one test per precedence rule, plus single flight and describe()."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
import pytest

from taskiq_sqs_http.aws import (
    ChainCredentialProvider,
    ContainerCredentialProvider,
    InstanceMetadataCredentialProvider,
    ProfileCredentialProvider,
    RefreshSettings,
    WebIdentityCredentialProvider,
    default_credential_provider,
)
from taskiq_sqs_http.aws._credentials import (
    CredentialProvider,
    Credentials,
    EnvironmentCredentialProvider,
    StaticCredentialProvider,
)
from taskiq_sqs_http.aws._errors import (
    ConfigurationError,
    CredentialSourceError,
    NoCredentialsError,
    PartialCredentialsError,
    UnsupportedCredentialSourceError,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def expiry(minutes: float = 60) -> str:
    when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAWS:
    """One MockTransport playing STS, the container agent and IMDS; counts calls per service."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"sts": 0, "container": 0, "imds": 0}
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host.startswith("sts."):
            self.calls["sts"] += 1
            body = (
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                f"<AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>{SECRET}</SecretAccessKey>"
                f"<SessionToken>{TOKEN}</SessionToken><Expiration>{expiry()}</Expiration>"
                "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
            )
            return httpx.Response(200, text=body)
        if host == "169.254.170.2":
            self.calls["container"] += 1
            if self.gate is not None:
                await self.gate.wait()
            return httpx.Response(200, content=self._json("ASIACONTAINER"))
        if host == "169.254.169.254":
            self.calls["imds"] += 1
            if request.method == "PUT":
                return httpx.Response(200, text="imds-token")
            if request.url.path.endswith("/security-credentials/"):
                return httpx.Response(200, text="role")
            return httpx.Response(200, content=self._json("ASIAIMDS"))
        return httpx.Response(404)

    @staticmethod
    def _json(key: str) -> bytes:
        return orjson.dumps(
            {
                "AccessKeyId": key,
                "SecretAccessKey": SECRET,
                "Token": TOKEN,
                "Expiration": expiry(),
            }
        )


@pytest.fixture
def fake() -> FakeAWS:
    return FakeAWS()


@pytest.fixture
async def http(fake: FakeAWS) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        yield client


@pytest.fixture
def aws_dir() -> Path:
    aws = Path.home() / ".aws"
    aws.mkdir()
    return aws


@pytest.fixture
def env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def web_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(JWT)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


@pytest.fixture
def profile_keys(aws_dir: Path) -> None:
    (aws_dir / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = {SECRET}\n"
    )


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task")


@pytest.fixture
def imds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")


async def key_of(provider: CredentialProvider) -> str:
    return (await provider.get_credentials()).access_key_id


# -- explicit ----------------------------------------------------------------------------------------


async def test_explicit_keys_beat_everything(
    env_keys: None, profile_keys: None, container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(
        access_key_id="AKIAARG", secret_access_key=SECRET, session_token=TOKEN, http_client=http
    )
    assert isinstance(provider, StaticCredentialProvider)
    credentials = await provider.get_credentials()
    assert (credentials.access_key_id, credentials.session_token) == ("AKIAARG", TOKEN)
    assert provider.describe() == "credentials from arguments"
    assert fake.calls == {"sts": 0, "container": 0, "imds": 0}


async def test_explicit_credentials_object_provider_or_callable(env_keys: None) -> None:
    snapshot = Credentials("AKIASNAP", SECRET)
    assert await key_of(default_credential_provider(credentials=snapshot)) == "AKIASNAP"
    custom = StaticCredentialProvider("AKIACUSTOM", SECRET)
    assert default_credential_provider(credentials=custom) is custom

    async def fetch() -> Credentials:
        return Credentials("AKIACALL", SECRET)

    assert await key_of(default_credential_provider(credentials=fetch)) == "AKIACALL"


def test_explicit_key_without_secret_is_an_error(env_keys: None) -> None:
    """Half a key pair in arguments names both parameters; it is a configuration error too."""
    with pytest.raises(
        PartialCredentialsError, match="aws_access_key_id is set but aws_secret_access_key is not"
    ):
        default_credential_provider(access_key_id="AKIAARG")
    with pytest.raises(ConfigurationError, match="aws_secret_access_key is set but aws_access_key_id is not"):
        default_credential_provider(secret_access_key=SECRET)
    with pytest.raises(PartialCredentialsError, match="aws_session_token is set"):
        default_credential_provider(session_token=TOKEN)


def test_credentials_and_keys_together_are_an_error() -> None:
    with pytest.raises(ConfigurationError):
        default_credential_provider(
            credentials=Credentials("A", SECRET), access_key_id="B", secret_access_key=SECRET
        )


# -- environment -------------------------------------------------------------------------------------


async def test_environment_beats_web_identity_and_profile(
    env_keys: None, web_identity: None, profile_keys: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "AKIAENV"
    assert provider.describe() == "credentials from environment"
    assert fake.calls["sts"] == 0


async def test_environment_key_without_secret_stops_the_chain(
    monkeypatch: pytest.MonkeyPatch, profile_keys: None, container: None, http: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
    provider = default_credential_provider(http_client=http)
    with pytest.raises(PartialCredentialsError, match="AWS_SECRET_ACCESS_KEY"):
        await provider.get_credentials()


async def test_environment_session_token_is_used(env_keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    credentials = await default_credential_provider().get_credentials()
    assert credentials.session_token == TOKEN


async def test_profile_argument_skips_environment_keys(
    env_keys: None, aws_dir: Path, http: httpx.AsyncClient
) -> None:
    (aws_dir / "credentials").write_text(
        f"[ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = {SECRET}\n"
    )
    provider = default_credential_provider(profile="ops", http_client=http)
    assert await key_of(provider) == "AKIAOPS"


async def test_aws_profile_variable_does_not_skip_environment_keys(
    env_keys: None, aws_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (aws_dir / "credentials").write_text(
        f"[ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "ops")
    assert await key_of(default_credential_provider()) == "AKIAENV"


# -- web identity ------------------------------------------------------------------------------------


async def test_web_identity_beats_profile_and_container(
    web_identity: None, profile_keys: None, container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "ASIASTS"
    assert provider.describe() == "credentials from web identity"
    assert fake.calls == {"sts": 1, "container": 0, "imds": 0}


async def test_web_identity_from_profile_keys_beats_profile_static_keys(
    aws_dir: Path, tmp_path: Path, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    token = tmp_path / "token"
    token.write_text(JWT)
    (aws_dir / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = {SECRET}\n"
    )
    (aws_dir / "config").write_text(
        "[default]\nregion = eu-west-3\nrole_arn = arn:aws:iam::1:role/r\n"
        f"web_identity_token_file = {token}\n"
    )
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "ASIASTS"
    assert isinstance(
        provider.selected if isinstance(provider, ChainCredentialProvider) else None,
        WebIdentityCredentialProvider,
    )


# -- profile files -----------------------------------------------------------------------------------


async def test_profile_static_keys_beat_container(
    profile_keys: None, container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "AKIAPROFILE"
    assert provider.describe() == "credentials from shared credentials file (profile default)"
    assert fake.calls["container"] == 0


async def test_credentials_file_beats_credential_process_beats_config_keys(
    aws_dir: Path, tmp_path: Path
) -> None:
    import sys

    script = tmp_path / "p.py"
    script.write_text(
        "import json\n"
        f"print(json.dumps({{'Version': 1, 'AccessKeyId': 'AKIAPROC', 'SecretAccessKey': {SECRET!r}}}))\n"
    )
    config = textwrap.dedent(f"""\
        [default]
        credential_process = {sys.executable} {script}
        aws_access_key_id = AKIACONFIG
        aws_secret_access_key = {SECRET}
        """)
    (aws_dir / "config").write_text(config)
    assert await key_of(default_credential_provider()) == "AKIAPROC"
    (aws_dir / "credentials").write_text(
        f"[default]\naws_access_key_id = AKIACREDS\naws_secret_access_key = {SECRET}\n"
    )
    assert await key_of(default_credential_provider()) == "AKIACREDS"
    (aws_dir / "credentials").unlink()
    (aws_dir / "config").write_text(config.replace("credential_process", "# credential_process"))
    assert await key_of(default_credential_provider()) == "AKIACONFIG"


async def test_unsupported_profile_feature_fails_even_with_container_available(
    aws_dir: Path, container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    (aws_dir / "config").write_text(
        "[profile work]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n"
    )
    provider = default_credential_provider(profile="work", http_client=http)
    with pytest.raises(UnsupportedCredentialSourceError, match=r"'work'.*SSO"):
        await provider.get_credentials()
    assert fake.calls["container"] == 0


async def test_assume_role_profile_fails_loudly(
    aws_dir: Path, monkeypatch: pytest.MonkeyPatch, imds: None, http: httpx.AsyncClient
) -> None:
    (aws_dir / "config").write_text(
        "[profile base]\naws_access_key_id = AKIABASE\naws_secret_access_key = s\n"
        "[profile admin]\nrole_arn = arn:aws:iam::1:role/admin\nsource_profile = base\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "admin")
    with pytest.raises(UnsupportedCredentialSourceError, match="assume role"):
        await default_credential_provider(http_client=http).get_credentials()


# -- container and IMDS ------------------------------------------------------------------------------


async def test_container_beats_imds(
    container: None, imds: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "ASIACONTAINER"
    assert provider.describe() == "credentials from container endpoint"
    assert fake.calls == {"sts": 0, "container": 1, "imds": 0}


async def test_failing_container_does_not_fall_through_to_imds(
    container: None, imds: None, fake: FakeAWS
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        if request.url.host == "169.254.170.2":
            return httpx.Response(500)
        raise AssertionError("IMDS must not be asked")

    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as client:
        provider = default_credential_provider(http_client=client)
        # Three attempts one second apart would slow the test: swap in a fast container provider.
        assert isinstance(provider, ChainCredentialProvider)
        providers = list(provider.providers)
        providers[3] = ContainerCredentialProvider(http_client=client, retry_delay=0)
        with pytest.raises(CredentialSourceError, match="container endpoint"):
            await ChainCredentialProvider(providers).get_credentials()


async def test_imds_is_the_last_resort(imds: None, http: httpx.AsyncClient, fake: FakeAWS) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "ASIAIMDS"
    assert provider.describe() == "credentials from instance metadata"
    assert fake.calls["imds"] == 3


# -- nothing found -----------------------------------------------------------------------------------


async def test_nothing_found_lists_every_place_looked() -> None:
    provider = default_credential_provider()
    with pytest.raises(NoCredentialsError) as info:
        await provider.get_credentials()
    looked = info.value.looked_in
    assert len(looked) == 6
    text = str(info.value)
    for place in (
        "environment",
        "web identity",
        "shared credentials file",
        "config file",
        "container endpoint",
        "instance metadata",
    ):
        assert place in text


# -- behaviour of the chain itself -------------------------------------------------------------------


async def test_first_provider_that_answers_is_kept(
    container: None, monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    assert await key_of(provider) == "ASIACONTAINER"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALATE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert await key_of(provider) == "ASIACONTAINER"
    assert fake.calls["container"] == 1


async def test_hundred_concurrent_callers_one_fetch(
    container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    fake.gate = asyncio.Event()
    provider = default_credential_provider(http_client=http)
    tasks = [asyncio.ensure_future(provider.get_credentials()) for _ in range(100)]
    for _ in range(20):
        await asyncio.sleep(0)
    fake.gate.set()
    results = await asyncio.gather(*tasks)
    assert {r.access_key_id for r in results} == {"ASIACONTAINER"}
    assert fake.calls["container"] == 1


async def test_invalidate_reaches_the_selected_provider(
    container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    provider = default_credential_provider(http_client=http)
    await provider.get_credentials()
    provider.invalidate()
    await provider.get_credentials()
    assert fake.calls["container"] == 2


async def test_describe_before_and_after_resolution(
    container: None, monkeypatch: pytest.MonkeyPatch, http: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    provider = default_credential_provider(http_client=http)
    before = provider.describe()
    assert before.startswith("credentials not resolved yet")
    assert "container endpoint" in before and "instance metadata" in before
    await provider.get_credentials()
    line = provider.describe()
    assert line == "credentials from container endpoint"
    assert SECRET not in line and TOKEN not in line


async def test_chain_aclose_and_refresh_settings_are_passed_down(
    container: None, http: httpx.AsyncClient, fake: FakeAWS
) -> None:
    settings = RefreshSettings(advisory_window=timedelta(hours=2), mandatory_window=timedelta(minutes=1))
    provider = default_credential_provider(http_client=http, refresh=settings)
    first = await provider.get_credentials()
    # 60 minutes left is inside the (stretched) advisory window: a background refresh starts.
    assert await provider.get_credentials() is first
    for _ in range(20):
        await asyncio.sleep(0)
    assert fake.calls["container"] == 2
    assert isinstance(provider, ChainCredentialProvider)
    await provider.aclose()


def test_chain_needs_providers_and_has_a_safe_repr() -> None:
    with pytest.raises(ValueError):
        ChainCredentialProvider([])
    chain = ChainCredentialProvider(
        [
            EnvironmentCredentialProvider(),
            ProfileCredentialProvider(),
            InstanceMetadataCredentialProvider(),
        ]
    )
    assert "EnvironmentCredentialProvider" in repr(chain)


def test_default_chain_order() -> None:
    provider = default_credential_provider()
    assert isinstance(provider, ChainCredentialProvider)
    kinds: list[Callable[..., object]] = [type(p) for p in provider.providers]
    assert kinds == [
        EnvironmentCredentialProvider,
        WebIdentityCredentialProvider,
        ProfileCredentialProvider,
        ContainerCredentialProvider,
        InstanceMetadataCredentialProvider,
    ]
