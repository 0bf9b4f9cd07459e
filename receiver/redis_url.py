"""The forms `REDIS_URL` (and `NOTIFY_REDIS_URL`) take, read without connecting:

- `redis://`, `rediss://` (TLS) and `unix://`: one server, as redis-py reads them;
- `redis+sentinel://[user:pass@]host1:26379,host2:26379/<service>[/db]` (and
  `rediss+sentinel://`): the primary Sentinel names for `<service>`; the user and
  password are the primary's, the sentinels' own come as `sentinel_username` and
  `sentinel_password` query parameters;
- `redis+cluster://[user:pass@]host1:7000,host2:7001` (and `rediss+cluster://`): a
  Redis Cluster, found from any of the nodes listed.

TLS options for the two multi-host forms: `ssl_ca_certs`, `ssl_certfile`,
`ssl_keyfile`, `ssl_cert_reqs` (`required`, `optional`, `none`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit


class Kind(StrEnum):
    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": (Kind.STANDALONE, False),
    "rediss": (Kind.STANDALONE, True),
    "unix": (Kind.STANDALONE, False),
    "redis+sentinel": (Kind.SENTINEL, False),
    "rediss+sentinel": (Kind.SENTINEL, True),
    "redis+cluster": (Kind.CLUSTER, False),
    "rediss+cluster": (Kind.CLUSTER, True),
}
DEFAULT_PORT = {Kind.SENTINEL: 26379, Kind.CLUSTER: 6379}
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisTarget:
    kind: Kind
    url: str
    """As given: a single server's URL goes to redis-py as it is."""
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    tls_options: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL without its secrets, for logs and errors."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        if "@" in parts.netloc:
            netloc = f"***@{netloc}"
        return f"{parts.scheme}://{netloc}{parts.path}"


def _host(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:7000
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"empty host in {text!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, port


def parse_redis_url(url: str) -> RedisTarget:
    """What `url` names; `ValueError` with a message fit for the operator if nothing."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        forms = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"expected one of {forms}, got {url.split(':')[0]!r}")
    kind, tls = SCHEMES[scheme]
    if kind is Kind.STANDALONE:
        return RedisTarget(kind, url, tls=tls)
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    hosts = tuple(_host(h, DEFAULT_PORT[kind]) for h in hostlist.split(",") if h)
    if not hosts:
        raise ValueError(f"{scheme}:// names no host")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    allowed = TLS_OPTIONS + (SENTINEL_OPTIONS if kind is Kind.SENTINEL else ())
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    path = [p for p in parts.path.split("/") if p]
    service, db = "", 0
    if kind is Kind.SENTINEL:
        if not path or len(path) > 2:
            raise ValueError(f"{scheme}:// needs the service name as its path: /<service>[/db]")
        service = unquote(path[0])
        db_text = path[1] if len(path) == 2 else "0"
    else:
        if len(path) > 1:
            raise ValueError(f"{scheme}:// takes no path (a cluster has database 0 only)")
        db_text = path[0] if path else "0"
    if not db_text.isdigit() or (kind is Kind.CLUSTER and db_text != "0"):
        raise ValueError(f"bad database {db_text!r}")
    db = int(db_text)
    return RedisTarget(
        kind,
        url,
        hosts=hosts,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=query.get("sentinel_username") or None,
        sentinel_password=query.get("sentinel_password") or None,
        tls=tls,
        tls_options={name: query[name] for name in TLS_OPTIONS if query.get(name)},
    )
