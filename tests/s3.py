"""An S3-compatible server on loopback (moto's standalone server, a separate process)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request

from tests.settings import _free_port

ACCESS_KEY, SECRET_KEY, REGION = "hushpost-test", "hushpost-test-secret", "us-east-1"


class S3Server:
    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        command = shutil.which("moto_server") or sys.executable
        args = [command] if command != sys.executable else [sys.executable, "-m", "moto.server"]
        self.process = subprocess.Popen([*args, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the S3-compatible server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def storage_settings(self, bucket: str) -> dict:
        self.client().create_bucket(Bucket=bucket)
        return {"kind": "s3", "root": "", "bucket": bucket, "endpoint_url": self.url, "region": REGION,
                "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}

    def objects(self, bucket: str) -> dict[str, bytes]:
        client = self.client()
        listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}
