"""Region and endpoint precedence, including the profile and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskiq_sqs_http.aws._endpoints import (
    DEFAULT_REGION,
    Resolved,
    resolve_endpoint,
    resolve_region,
)
from taskiq_sqs_http.aws._errors import ConfigurationError

CONFIG = """\
[default]
region = ap-south-1
endpoint_url = http://profile-global:1000
services = local

[services local]
sqs =
  endpoint_url = http://profile-sqs:2000/

[profile plain]
region = sa-east-1
endpoint_url = https://plain.example

[profile ignoring]
endpoint_url = https://ignored.example
ignore_configured_endpoint_urls = true
"""


@pytest.fixture
def config_file() -> Path:
    aws = Path.home() / ".aws"
    aws.mkdir()
    path = aws / "config"
    path.write_text(CONFIG)
    return path


# -- region ------------------------------------------------------------------------------------------


def test_region_explicit_wins(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert resolve_region("us-west-1") == Resolved("us-west-1", "argument")


def test_region_aws_region_beats_default_region(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert resolve_region() == Resolved("eu-west-1", "AWS_REGION")


def test_region_default_region_beats_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert resolve_region() == Resolved("eu-west-2", "AWS_DEFAULT_REGION")


def test_region_from_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve_region()
    assert resolved.value == "ap-south-1"
    assert "profile default" in resolved.source and str(config_file) in resolved.source
    monkeypatch.setenv("AWS_PROFILE", "plain")
    assert resolve_region().value == "sa-east-1"


def test_region_falls_back_to_us_east_1() -> None:
    assert resolve_region() == Resolved(DEFAULT_REGION, "default")
    assert resolve_region(None, {}) == Resolved("us-east-1", "default")


def test_region_profile_can_be_skipped(config_file: Path) -> None:
    assert resolve_region(use_profile=False).value == "us-east-1"


def test_region_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "EU West 1")
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        resolve_region()


def test_region_from_explicit_environ_mapping_ignores_process_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert resolve_region(None, {"AWS_DEFAULT_REGION": "eu-north-1"}).value == "eu-north-1"


# -- endpoint ----------------------------------------------------------------------------------------


def test_endpoint_explicit_wins_even_when_configured_urls_are_ignored(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://env-sqs:1")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert resolve_endpoint("sqs", "eu-west-1", "http://explicit:9/") == Resolved(
        "http://explicit:9", "argument"
    )


def test_endpoint_service_variable_beats_global(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://env-sqs:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-all:2")
    assert resolve_endpoint("sqs", "eu-west-1") == Resolved("http://env-sqs:1", "AWS_ENDPOINT_URL_SQS")
    assert resolve_endpoint("s3", "eu-west-1") == Resolved("http://env-all:2", "AWS_ENDPOINT_URL")


def test_endpoint_global_variable_beats_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-all:2")
    assert resolve_endpoint("sqs", "eu-west-1").value == "http://env-all:2"


def test_endpoint_services_section_beats_profile_endpoint_url(config_file: Path) -> None:
    sqs = resolve_endpoint("sqs", "eu-west-1")
    assert sqs.value == "http://profile-sqs:2000"
    assert "services local" in sqs.source
    s3 = resolve_endpoint("s3", "eu-west-1")
    assert s3.value == "http://profile-global:1000"
    assert "endpoint_url of profile default" in s3.source


def test_endpoint_profile_endpoint_url(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "plain")
    assert resolve_endpoint("sqs", "sa-east-1").value == "https://plain.example"


def test_ignore_configured_endpoint_urls_variable(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://env-sqs:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-all:2")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert resolve_endpoint("sqs", "eu-west-1") == Resolved("https://sqs.eu-west-1.amazonaws.com", "default")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")
    assert resolve_endpoint("sqs", "eu-west-1").value == "http://env-sqs:1"


def test_ignore_configured_endpoint_urls_in_profile(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "ignoring")
    assert resolve_endpoint("sqs", "eu-west-1").source == "default"


def test_default_endpoints() -> None:
    assert resolve_endpoint("sqs", "eu-west-1").value == "https://sqs.eu-west-1.amazonaws.com"
    assert resolve_endpoint("s3", "us-east-1").value == "https://s3.amazonaws.com"
    assert resolve_endpoint("s3", "eu-west-1").value == "https://s3.eu-west-1.amazonaws.com"
    assert resolve_endpoint("sqs", "cn-north-1").value == "https://sqs.cn-north-1.amazonaws.com.cn"
    assert resolve_endpoint("sts", "eu-west-1").value == "https://sts.eu-west-1.amazonaws.com"


def test_endpoint_must_be_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "localhost:4566")
    with pytest.raises(ConfigurationError, match="AWS_ENDPOINT_URL_S3"):
        resolve_endpoint("s3", "eu-west-1")


def test_old_positional_signatures_still_work() -> None:
    env = {"AWS_ENDPOINT_URL": "http://x:1"}
    assert resolve_endpoint("sqs", "eu-west-1", None, env).value == "http://x:1"
    assert resolve_endpoint("sqs", "eu-west-1", None, environ={}).source == "default"
