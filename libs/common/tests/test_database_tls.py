"""`sslmode` in DATABASE_URL, on the real PostgreSQL (Debian's, whose TLS is on with a self-signed
certificate): what each mode makes of a connection, as the server itself reports it (`pg_stat_ssl`)."""

import ssl

import certifi
import pytest
from sqlalchemy import text

from common.db import UnsupportedDatabase, make_engine


def encrypted(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).scalar()
    finally:
        engine.dispose()


@pytest.fixture
def database(postgres):
    url = postgres()
    if not encrypted(url):
        pytest.skip("this PostgreSQL serves no TLS: nothing to tell the modes apart")
    return url


def test_disable_connects_in_plain_and_require_encrypts(database):
    assert encrypted(f"{database}?sslmode=disable") is False
    assert encrypted(f"{database}?sslmode=require") is True
    assert encrypted(f"{database}?sslmode=prefer") is True


def test_verify_full_refuses_a_server_its_root_certificates_do_not_vouch_for(database):
    # certifi's public CAs never signed the server's self-signed certificate (the system's store
    # may trust it: Debian links its snake-oil certificate into /etc/ssl/certs)
    with pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate"):
        encrypted(f"{database}?sslmode=verify-full&sslrootcert={certifi.where()}")


@pytest.mark.parametrize(
    "url", ["postgresql+pg8000://u@h/db?sslmode=allow", "postgresql+psycopg2://u@h/db?sslmode=disable"]
)
def test_an_sslmode_this_driver_cannot_honour_is_refused_at_start(url):
    with pytest.raises(UnsupportedDatabase, match="sslmode"):
        make_engine(url)
