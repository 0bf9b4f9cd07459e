"""The REDIS_URL forms, read without connecting, and the combinations config refuses."""

from __future__ import annotations

import re

import pytest

from receiver.config import ConfigError, load_settings
from receiver.redis_url import Kind, parse_redis_url
from receiver.store.client import retries_for
from tests.conftest import TOKENS_ENV


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://h:6380/1", "unix:///run/redis.sock?db=2"]
)
def test_single_server_urls_go_to_redis_py_as_given(url: str) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.url) == (Kind.STANDALONE, url)
    assert target.tls == url.startswith("rediss")


def test_sentinel_url_names_the_sentinels_the_service_and_both_credentials() -> None:
    target = parse_redis_url(
        "rediss+sentinel://app:p%40ss@s1:26379,s2,[::1]:26380/br-primary/3"
        "?sentinel_password=sp&ssl_ca_certs=/etc/ca.pem"
    )
    assert target.kind is Kind.SENTINEL
    assert target.hosts == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("br-primary", 3)
    assert (target.username, target.password) == ("app", "p@ss")
    assert (target.sentinel_username, target.sentinel_password) == (None, "sp")
    assert target.tls and target.tls_options == {"ssl_ca_certs": "/etc/ca.pem"}
    assert target.redacted() == "rediss+sentinel://***@s1:26379,s2,[::1]:26380/br-primary/3"


def test_cluster_url_lists_seed_nodes() -> None:
    target = parse_redis_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert target.kind is Kind.CLUSTER
    assert target.hosts == (("127.0.0.1", 7000), ("127.0.0.1", 7001))
    assert target.password is None and not target.tls


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:6379", "expected one of"),
        ("redis+sentinel://h1,h2", "service name"),
        ("redis+sentinel:///svc", "names no host"),
        ("redis+cluster://h:7000/1", "bad database"),
        ("redis+cluster://h:7000/0/x", "takes no path"),
        ("redis+cluster://h:port", "bad port"),
        ("redis+sentinel://h/svc?sentinel_pasword=x", "unknown option(s) sentinel_pasword"),
        ("redis+cluster://h?sentinel_password=x", "unknown option(s) sentinel_password"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_redis_url(url)


def test_config_reports_a_bad_url_by_name() -> None:
    with pytest.raises(ConfigError, match=r"^REDIS_URL: expected one of"):
        load_settings({**TOKENS_ENV, "REDIS_URL": "memcached://h"})


def test_a_cluster_needs_a_separate_queue_redis() -> None:
    cluster = {**TOKENS_ENV, "REDIS_URL": "redis+cluster://h:7000"}
    with pytest.raises(ConfigError, match="set NOTIFY_REDIS_URL"):
        load_settings(cluster)
    with pytest.raises(ConfigError, match="NOTIFY_REDIS_URL: the notification queue"):
        load_settings({**cluster, "NOTIFY_REDIS_URL": "redis+cluster://h:7000"})
    settings = load_settings({**cluster, "NOTIFY_REDIS_URL": "redis+sentinel://s/q"})
    assert settings.notify_redis_url == "redis+sentinel://s/q"


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_MIN_REPLICAS": "1"},
        {
            "REDIS_MIN_REPLICAS": "1",
            "REDIS_URL": "redis+cluster://h",
            "NOTIFY_REDIS_URL": "redis://q",
        },
        {"NOTIFY_REDIS_URL": "redis://q"},
    ],
)
def test_combinations_that_would_lose_writes_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load_settings({**TOKENS_ENV, **env})


def test_min_replicas_on_a_primary_with_replicas() -> None:
    env = {**TOKENS_ENV, "REDIS_URL": "redis+sentinel://s/p", "REDIS_MIN_REPLICAS": "1"}
    assert load_settings(env).redis_min_replicas == 1


def test_the_retry_budget_becomes_enough_back_off_steps() -> None:
    assert retries_for(0.0) == 0
    assert retries_for(0.1) == 1  # 0.1 s
    assert retries_for(2.0) == 6  # 0.1 + 0.2 + 0.4 + 0.5 + 0.5 + 0.5
