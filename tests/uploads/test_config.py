"""The upload settings, read with the rest of the configuration."""
from __future__ import annotations

import os

import pytest

from hookline.config import Config, ConfigError


def test_defaults() -> None:
    config = Config.from_env(env={})
    assert config.blob_url == "file://" + os.path.abspath(".hookline/blobs")
    assert (config.s3_endpoint_url, config.max_upload_bytes, config.chunk_vectors,
            config.upload_ttl) == ("", 8 * 1024 ** 3, 10_000, 86_400)
    assert config.progress_event_seconds == 5.0


def test_values_from_the_environment() -> None:
    config = Config.from_env(env={
        "HOOKLINE_BLOB_URL": "s3://bucket/some/prefix", "HOOKLINE_S3_ENDPOINT_URL": "http://minio:9000",
        "HOOKLINE_MAX_UPLOAD_BYTES": "1000", "HOOKLINE_CHUNK_VECTORS": "500", "HOOKLINE_UPLOAD_TTL": "60"})
    assert (config.blob_url, config.s3_endpoint_url, config.max_upload_bytes, config.chunk_vectors,
            config.upload_ttl) == ("s3://bucket/some/prefix", "http://minio:9000", 1000, 500, 60)
    assert Config.from_env(env={"HOOKLINE_BLOB_URL": "file:///srv/blobs"}).blob_url == "file:///srv/blobs"
    assert Config.from_env(env={"HOOKLINE_PROGRESS_EVENT_SECONDS": "0.2"}).progress_event_seconds == 0.2


@pytest.mark.parametrize("env", [
    {"HOOKLINE_BLOB_URL": "ftp://host/x"},
    {"HOOKLINE_BLOB_URL": "file://relative/path"},
    {"HOOKLINE_BLOB_URL": "s3:///no-bucket"},
    {"HOOKLINE_MAX_UPLOAD_BYTES": "0"},
    {"HOOKLINE_CHUNK_VECTORS": "many"},
    {"HOOKLINE_UPLOAD_TTL": "-5"},
    {"HOOKLINE_PROGRESS_EVENT_SECONDS": "0"},
])
def test_bad_values_are_refused_with_the_name(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=next(iter(env))):
        Config.from_env(env=env)
