"""An AWS CLI-style profile for a key: the ``credentials`` and ``config`` files boto3 and the AWS CLI read.

``leasehold dev`` writes one into its data directory, so that setting ``AWS_SHARED_CREDENTIALS_FILE``,
``AWS_CONFIG_FILE`` and ``AWS_PROFILE`` (the lines :meth:`Profile.environment` gives) is all a newcomer's
SDK needs: the key, the region and the endpoint (``endpoint_url``, which botocore reads from a profile).
The files are written whole and then renamed, readable by their owner only.

Example::

    profile = write_profile(Path(".leasehold"), key, region="us-east-1", endpoint="http://127.0.0.1:9000")
    print(profile.export_line())
"""

from __future__ import annotations

import configparser
import io
import os
from dataclasses import dataclass
from pathlib import Path

from assignment.frontend.auth.keys import AccessKey

__all__ = ["PROFILE_NAME", "Profile", "write_profile"]

PROFILE_NAME = "leasehold"


@dataclass(frozen=True, slots=True)
class Profile:
    """Where a profile was written."""

    name: str
    credentials_file: Path
    config_file: Path

    def environment(self) -> dict[str, str]:
        """The variables that select the profile."""
        return {
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_PROFILE": self.name,
        }

    def export_line(self) -> str:
        """``export A=... B=... C=...`` for a shell."""
        return "export " + " ".join(f"{name}={value}" for name, value in self.environment().items())


def _write(path: Path, sections: dict[str, dict[str, str]]) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict(sections)
    text = io.StringIO()
    parser.write(text)
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text.getvalue())
    os.replace(partial, path)


def write_profile(directory: Path, key: AccessKey, *, region: str, endpoint: str, name: str = PROFILE_NAME) -> Profile:
    """Write ``directory/credentials`` and ``directory/config`` with one profile ``name``."""
    directory = directory.resolve()
    profile = Profile(name, directory / "credentials", directory / "config")
    _write(
        profile.credentials_file,
        {name: {"aws_access_key_id": key.access_key_id, "aws_secret_access_key": key.secret}},
    )
    _write(profile.config_file, {f"profile {name}": {"region": region, "endpoint_url": endpoint}})
    return profile
