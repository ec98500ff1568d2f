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
"""

from ._chain import ChainCredentialProvider, default_credential_provider
from ._container import ContainerCredentialProvider
from ._imds import InstanceMetadataCredentialProvider
from ._profile import ProfileCredentialProvider
from ._web_identity import WebIdentityCredentialProvider

__all__ = [
    "ChainCredentialProvider",
    "ContainerCredentialProvider",
    "InstanceMetadataCredentialProvider",
    "ProfileCredentialProvider",
    "WebIdentityCredentialProvider",
    "default_credential_provider",
]
