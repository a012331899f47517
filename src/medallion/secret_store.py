"""Reading a secret from AWS Secrets Manager, at the moment it is needed.

The value is held as a ``SecretStr`` and registered with the log redactor before anything else
can print it, so it appears in no log line, audit record or error message. The client is
boto3's, configured by the standard AWS environment (the process's role or credentials,
``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a local server in tests), as the S3 path is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from medallion.config import SecretsManagerSecret
from medallion.errors import ConfigError, JobError
from medallion.redact import register_secrets

log = logging.getLogger(__name__)


def read_secret(ref: SecretsManagerSecret, key: str) -> SecretStr:
    """The ``SecretString`` of the secret ``ref`` (configured at ``key``), read now."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"secret '{ref.secret_id}' ({key}.secret_id)"
    try:
        client = boto3.session.Session().client("secretsmanager", region_name=ref.region)
        with _wire_logs_quiet():
            response: dict[str, Any] = client.get_secret_value(SecretId=ref.secret_id)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            raise ConfigError(
                f"{where} does not exist in AWS Secrets Manager"
                f"{f' in {ref.region}' if ref.region else ''}; create it or fix the id"
            ) from None
        hint = {
            "AccessDeniedException": "; the process's AWS role needs secretsmanager:GetSecretValue on it",
            "DecryptionFailure": "; the process's AWS role needs kms:Decrypt on the secret's KMS key",
        }.get(code, "")
        raise JobError(f"cannot read {where} from AWS Secrets Manager: {code}{hint}") from None
    except BotoCoreError as exc:  # no region, no credentials, endpoint unreachable
        raise JobError(f"cannot read {where} from AWS Secrets Manager: {exc}") from None
    value = response.get("SecretString")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} holds no text (SecretString); store the credential as text")
    register_secrets([value])
    log.info("read %s from AWS Secrets Manager (version %s)", where, response.get("VersionId"))
    return SecretStr(value)


# botocore logs each response body at DEBUG, before the value can be registered for masking.
_WIRE_LOGGERS = ("botocore", "urllib3")


@contextmanager
def _wire_logs_quiet() -> Iterator[None]:
    """Keep the HTTP wire logs at INFO or above while the secret is on the wire, even when a
    caller (a test harness, a host process) turned them to DEBUG."""
    loggers = [logging.getLogger(name) for name in _WIRE_LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)
