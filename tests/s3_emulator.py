"""An S3-compatible emulator (moto's server mode) on 127.0.0.1 for storage tests.

The emulator keeps everything in its own process memory and speaks plain HTTP, so a test
reaches it through the same knobs a real deployment uses: ``AWS_ENDPOINT_URL`` plus the
standard credential variables. Nothing here touches the network beyond the loopback.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

#: Credentials the emulator accepts (it accepts any); never real ones.
FAKE_KEY_ID = "emulator-key"
FAKE_SECRET = "emulator-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Emulator:
    """A running emulator: where it listens and the bucket made for the test."""

    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (pyarrow, Hadoop's S3A, boto3) needs to reach it."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # No profile or instance metadata lookups: the emulator is the only endpoint.
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def s3_emulator(*, bucket: str = "shikong-test") -> Iterator[S3Emulator]:
    """Start the emulator on a free loopback port with ``bucket`` created; always stop it.

    The port is picked by binding port 0 and releasing it: another process could take it
    in between, which then fails loudly in ``start`` rather than silently sharing a server.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    # The emulator logs every request at INFO; a failing test would drown in them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        # moto keeps its buckets in module state shared by every server of this process:
        # start from an empty store, or a bucket of an earlier test would still be there.
        _reset(endpoint)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET,
            region_name=REGION,
        )
        client.create_bucket(Bucket=bucket)
        yield S3Emulator(endpoint=endpoint, bucket=bucket)
    finally:
        server.stop()


def _reset(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def list_keys(emulator: S3Emulator) -> list[str]:
    """Every object key in the emulator's bucket (checks that writes landed there)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=emulator.endpoint,
        aws_access_key_id=FAKE_KEY_ID,
        aws_secret_access_key=FAKE_SECRET,
        region_name=REGION,
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=emulator.bucket):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)
