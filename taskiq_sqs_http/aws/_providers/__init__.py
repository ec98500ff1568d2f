"""Credential sources beyond static keys and the environment, and the chain that picks one.

Every platform the broker runs on hands out credentials differently: Lambda through the environment,
ECS and EKS Pod Identity through a container endpoint, EKS IRSA through a web identity token
exchanged at STS, EC2 through instance metadata, developers through ``~/.aws`` files and
``credential_process``. The chain tries them in botocore's order so that a machine resolves the same
identity here as with the AWS CLI.

Two rules hold throughout:

* a source that is *absent* raises ``NoCredentialsError`` (the chain moves on), a source that is
  *configured but broken* raises another ``CredentialsError`` (the chain stops): falling through to
  another identity after, say, a typo in a profile would run the worker with the wrong role;
* nothing secret is ever put in an exception message, a log line, a ``repr`` or ``describe()``.

One module per source, so that a change in how one platform hands out credentials touches one file.
This package re-exports every name the former single module ``_providers.py`` defined, private
helpers included, so existing imports keep working.
"""

# The private names below are re-exported only for code that imported them from the former module.
# pyright: reportPrivateUsage=false

from ._chain import ChainCredentialProvider as ChainCredentialProvider
from ._chain import default_credential_provider as default_credential_provider
from ._common import _ISO_RE as _ISO_RE
from ._common import client_for as client_for
from ._common import effective_environ as effective_environ
from ._common import logger as logger
from ._common import parse_credentials_json as parse_credentials_json
from ._common import parse_expiration as parse_expiration
from ._common import require_str as require_str
from ._common import transport_problem as transport_problem
from ._container import _CONTAINER_ALLOWED_HOSTS as _CONTAINER_ALLOWED_HOSTS
from ._container import _CONTAINER_LOOKED_IN as _CONTAINER_LOOKED_IN
from ._container import _ECS_HOST as _ECS_HOST
from ._container import ContainerCredentialProvider as ContainerCredentialProvider
from ._container import _redact_url as _redact_url
from ._container import container_full_uri_allowed as container_full_uri_allowed
from ._imds import _IMDS_DEFAULT as _IMDS_DEFAULT
from ._imds import _IMDS_IPV6 as _IMDS_IPV6
from ._imds import _IMDS_ROLE_PATH as _IMDS_ROLE_PATH
from ._imds import _IMDS_TOKEN_PATH as _IMDS_TOKEN_PATH
from ._imds import _TRUE as _TRUE
from ._imds import InstanceMetadataCredentialProvider as InstanceMetadataCredentialProvider
from ._imds import _float_env as _float_env
from ._imds import _int_env as _int_env
from ._imds import _NoMetadata as _NoMetadata
from ._profile import ProfileCredentialProvider as ProfileCredentialProvider
from ._profile import _static_from_section as _static_from_section
from ._profile import _with_source as _with_source
from ._profile import run_credential_process as run_credential_process
from ._web_identity import _STS_RETRYABLE_CODES as _STS_RETRYABLE_CODES
from ._web_identity import _WEB_IDENTITY_LOOKED_IN as _WEB_IDENTITY_LOOKED_IN
from ._web_identity import WebIdentityCredentialProvider as WebIdentityCredentialProvider
from ._web_identity import _child_text as _child_text
from ._web_identity import _find as _find
from ._web_identity import _local as _local
from ._web_identity import _parse_sts_credentials as _parse_sts_credentials
from ._web_identity import _parse_sts_error as _parse_sts_error

# The shared helpers had underscored names in the former module.
_client_for = client_for
_env = effective_environ
_parse_credentials_json = parse_credentials_json
_require_str = require_str
_transport_problem = transport_problem

__all__ = [
    "ChainCredentialProvider",
    "ContainerCredentialProvider",
    "InstanceMetadataCredentialProvider",
    "ProfileCredentialProvider",
    "WebIdentityCredentialProvider",
    "default_credential_provider",
    "parse_expiration",
]
