"""Shared config/credentials files, read from a temporary HOME (never the real ~/.aws)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskiq_sqs_http.aws._errors import ConfigurationError
from taskiq_sqs_http.aws._profiles import (
    config_file_path,
    credentials_file_path,
    load_profile,
    parse_ini,
    parse_subsection,
    profile_name,
)

CREDENTIALS = """\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default/secret/KEY

[dev]
aws_access_key_id=AKIADEV
aws_secret_access_key=dev/secret/KEY
aws_session_token = devtoken
"""

CONFIG = """\
# written by `aws configure`
[default]
region = eu-west-1
output = json

[profile default]
region = eu-central-1

[profile dev]
region = us-west-2
services = local-stack
credential_process = /usr/bin/true
s3 =
  addressing_style = path

[dev]
region = should-be-ignored

[services local-stack]
sqs =
  endpoint_url = http://localhost:4566
s3 =
  endpoint_url = http://localhost:4572
  ; a comment inside a sub-section

[DEFAULT]
region = never-inherited
"""


@pytest.fixture
def home() -> Path:
    return Path.home()


@pytest.fixture
def aws_files(home: Path) -> Path:
    aws = home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(CREDENTIALS)
    (aws / "config").write_text(CONFIG)
    return aws


def test_home_is_isolated(home: Path) -> None:
    assert not (home / ".aws").exists()
    assert "pytest" in str(home) or "tmp" in str(home)


def test_profile_name_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert profile_name() == ("default", "default")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert profile_name() == ("dev", "AWS_PROFILE")
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "ops")
    assert profile_name() == ("ops", "AWS_DEFAULT_PROFILE")
    assert profile_name({"AWS_PROFILE": "x"}) == ("x", "AWS_PROFILE")


def test_file_paths_default_to_home_and_follow_overrides(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert credentials_file_path() == home / ".aws" / "credentials"
    assert config_file_path() == home / ".aws" / "config"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "c"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "k"))
    assert credentials_file_path() == tmp_path / "c"
    assert config_file_path() == tmp_path / "k"
    # An explicit mapping expands ~ with its own HOME.
    assert config_file_path({"HOME": "/somewhere"}) == Path("/somewhere/.aws/config")


def test_default_profile_reads_both_files(aws_files: Path) -> None:
    profile = load_profile()
    assert profile.name == "default"
    assert profile.exists
    assert profile.credentials["aws_access_key_id"] == "AKIADEFAULT"
    # [profile default] wins over [default]; other keys of [default] remain.
    assert profile.config["region"] == "eu-central-1"
    assert profile.config["output"] == "json"
    assert profile.credentials_path == aws_files / "credentials"


def test_named_profile_with_services_section(aws_files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "dev")
    profile = load_profile()
    assert profile.name == "dev" and profile.chosen_by == "AWS_PROFILE"
    assert profile.config["region"] == "us-west-2"
    assert profile.get("aws_session_token") == "devtoken"
    assert profile.get("credential_process") == "/usr/bin/true"
    assert profile.service_setting("sqs", "endpoint_url") == "http://localhost:4566"
    assert profile.service_setting("s3", "endpoint_url") == "http://localhost:4572"
    assert profile.service_setting("sts", "endpoint_url") is None
    assert parse_subsection(profile.config["s3"]) == {"addressing_style": "path"}


def test_sections_without_profile_prefix_and_default_section_are_ignored(aws_files: Path) -> None:
    profile = load_profile("dev")
    assert profile.chosen_by == "argument"
    assert profile.config["region"] == "us-west-2"
    other = load_profile("nobody")
    assert not other.exists
    assert "region" not in other.config


def test_missing_files_give_an_empty_profile() -> None:
    profile = load_profile()
    assert not profile.exists
    assert profile.get("region") is None
    assert profile.services == {}


def test_unparseable_file_names_the_file(home: Path) -> None:
    aws = home / ".aws"
    aws.mkdir()
    (aws / "config").write_text("region = eu-west-1\n[default]\n")
    with pytest.raises(ConfigurationError, match=r"\.aws/config"):
        load_profile()


def test_directory_instead_of_file_is_an_error(home: Path) -> None:
    (home / ".aws" / "credentials").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="directory"):
        load_profile()


def test_parse_ini_keeps_keys_lowercase_and_values_raw() -> None:
    sections = parse_ini("[a]\nAWS_Access_Key_ID = X\nvalue = 100%\n")
    assert sections == {"a": {"aws_access_key_id": "X", "value": "100%"}}


def test_profile_repr_hides_values(aws_files: Path) -> None:
    text = repr(load_profile("dev"))
    assert "dev/secret/KEY" not in text
    assert "devtoken" not in text
    assert "aws_secret_access_key" in text
