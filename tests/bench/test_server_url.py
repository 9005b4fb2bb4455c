"""The benches' servers connect to their own cluster by its Unix-domain socket (bench/common.py,
``server_url``); ``BENCH_PG_TCP=1`` keeps loopback TCP; a URL of a cluster the bench did not
start is left as it is."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests import pgcluster
from tests.bench.bench_modules import load

common = load("common")


@pytest.fixture
def known(pg_cluster: pgcluster.Cluster) -> pgcluster.Cluster:
    common._known(pg_cluster)
    return pg_cluster


def _client_address(url: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT inet_client_addr()")).scalar_one()
    finally:
        engine.dispose()


def test_a_known_cluster_by_its_socket(known: pgcluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PG_TCP", raising=False)
    url = known.url("postgres")
    by_socket = common.server_url(url)
    assert by_socket == f"{url}?host={known.sockdir}"
    assert _client_address(by_socket) is None  # no client address: a Unix-domain socket
    assert str(_client_address(url)) == "127.0.0.1"


def test_tcp_kept_when_asked(known: pgcluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_PG_TCP", "1")
    url = known.url("postgres")
    assert common.server_url(url) == url


def test_other_urls_unchanged(known: pgcluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_PG_TCP", raising=False)
    other = f"postgresql+psycopg://postgres@127.0.0.1:{known.port + 1}/x"
    common._SOCKETS.pop(known.port + 1, None)
    assert common.server_url(other) == other
    assert common.server_url("sqlite:///x.sqlite3") == "sqlite:///x.sqlite3"
    given = f"{known.url('postgres')}?host=/elsewhere"
    assert common.server_url(given) == given
    query = f"{known.url('postgres')}?application_name=bench"
    assert common.server_url(query) == f"{query}&host={known.sockdir}"
