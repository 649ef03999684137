"""Connections against a real PostgreSQL 15 that only lets a role in with a client certificate.

A cluster with ssl=on and a ``hostssl ... cert`` rule for one role, certificates made with openssl here (the
client key encrypted): backup_set connects through psycopg2 (its counts) and through pg_dump and pg_restore
(the archive), so both paths must carry ssl_cert, ssl_key and connect_params' sslpassword, or libpq's
environment when the connection leaves them out. The passphrase must show nowhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from conftest import REPO, execute, run_sql
from devkit.pgembed import EmbeddedCluster
from psycopg2 import sql

pytestmark = pytest.mark.integration

ROLE = "cert_reader"
DATABASE = "TlsCase_Product"
CONSOLIDATED = "TlsCase_Consolidated"
ROWS = 25


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory, key_passphrase):
    """A CA, a server certificate for 127.0.0.1 and a client certificate for ROLE whose key is encrypted."""
    (directory / "passphrase").write_text(key_passphrase)
    os.chmod(directory / "passphrase", 0o600)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=consolidation test CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=directory)
    # The passphrase goes to openssl through a file: even here no secret on a command line.
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes-256-cbc",
            "-pass", "file:passphrase", "-out", "client.key", cwd=directory)
    openssl("req", "-new", "-key", "client.key", "-passin", "file:passphrase", "-out", "client.csr",
            "-subj", "/CN=" + ROLE, cwd=directory)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "client.crt", "-days", "2", cwd=directory)
    for name in ("client.key", "server.key", "ca.key"):
        os.chmod(directory / name, 0o600)


@pytest.fixture(scope="module")
def tls(cluster_root, tmp_path_factory):
    """The cluster, its certificates and the passphrase of the client key."""
    cluster = EmbeddedCluster("tls", cluster_root)
    info = cluster.start()
    certs = tmp_path_factory.mktemp("certs")
    passphrase = "key-pass-" + os.urandom(6).hex()
    make_certificates(certs, passphrase)
    server_dir = cluster.dir / "tls"
    server_dir.mkdir(mode=0o700)
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(certs / name, server_dir / name)
        cluster._give_to_server_user(server_dir / name)
    cluster._give_to_server_user(server_dir)
    for setting, value in (("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key"), ("ssl_ca_file", "ca.crt")):
        path = sql.Literal(str(server_dir / value))
        execute(info, sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(setting), path))
    execute(info, "ALTER SYSTEM SET ssl = on")
    hba = cluster.data_dir / "pg_hba.conf"
    # First match wins: the role gets in with its certificate over TLS, and no other way.
    hba.write_text(f"hostssl all {ROLE} 127.0.0.1/32 cert\nhost all {ROLE} 127.0.0.1/32 reject\n" + hba.read_text())
    execute(info, "SELECT pg_reload_conf()")
    execute(info, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
    for name in (DATABASE, CONSOLIDATED):
        execute(info, sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(ROLE)))
    run_sql(info, DATABASE, sql.SQL("SET ROLE {}; CREATE TABLE ads (id int PRIMARY KEY); "
                                    "INSERT INTO ads SELECT generate_series(1, %s)").format(sql.Identifier(ROLE)),
            (ROWS,))
    yield info, certs, passphrase
    cluster.destroy()


def certificate_endpoint(info, certs, passphrase):
    return {"host": info.host, "port": info.port, "user": ROLE, "sslmode": "verify-full",
            "sslrootcert": str(certs / "ca.crt"), "ssl_cert": str(certs / "client.crt"),
            "ssl_key": str(certs / "client.key"), "connect_params": {"sslpassword": passphrase}}


def backup(run_module, source, root, env=None):
    args = dict(source=source, databases=[DATABASE], backup_root=str(root), set_id="tls-1",
                _ansible_inject_invocation=True)
    return run_module("backup_set", args, env=env)


def test_the_server_admits_the_role_only_with_its_certificate(tls):
    info, certs, passphrase = tls
    with pytest.raises(psycopg2.OperationalError, match="rejects connection"):
        psycopg2.connect(host=info.host, port=info.port, user=ROLE, dbname=DATABASE, sslmode="disable")
    with pytest.raises(psycopg2.OperationalError, match="certificate"):
        psycopg2.connect(host=info.host, port=info.port, user=ROLE, dbname=DATABASE, sslmode="require",
                         sslcert="/nonexistent", sslkey="/nonexistent")


def test_a_client_certificate_with_an_encrypted_key_reaches_the_sessions_and_pg_dump(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    result = backup(run_module, certificate_endpoint(info, certs, passphrase), tmp_path / "backups",
                    env={"TMPDIR": str(private_tmp)})
    assert not result["failed"], result.get("msg")
    assert result["dumped"] == [DATABASE]
    archive = result["manifest"]["archives"][0]
    assert archive["verified"] is True
    assert {(t["schema"], t["table"]): t["rows"] for t in archive["tables"]} == {("public", "ads"): ROWS}
    assert any(os.path.basename(argv[0]) == "pg_dump" for argv in result["commands"])
    # Nowhere: not in argv, not in the invocation the result echoes, not in a service file left behind.
    assert passphrase not in json.dumps(result)
    assert result["invocation"]["module_args"]["source"]["connect_params"]["sslpassword"] != passphrase
    assert os.listdir(private_tmp) == []


def test_a_wrong_key_passphrase_fails_naming_the_source_and_showing_neither_passphrase(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    wrong = "not-the-" + passphrase
    result = backup(run_module, certificate_endpoint(info, certs, wrong), tmp_path / "backups")
    assert result["failed"]
    assert "cannot connect to the source server" in result["msg"]
    assert wrong not in json.dumps(result) and passphrase not in json.dumps(result)


def test_libpq_environment_decides_what_the_connection_leaves_out(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    env = {"PGHOST": info.host, "PGPORT": str(info.port), "PGSSLMODE": "verify-full",
           "PGSSLROOTCERT": str(certs / "ca.crt"), "PGSSLCERT": str(certs / "client.crt"),
           "PGSSLKEY": str(certs / "client.key")}
    result = backup(run_module, {"user": ROLE, "connect_params": {"sslpassword": passphrase}}, tmp_path / "backups",
                    env=env)
    assert not result["failed"], result.get("msg")
    assert result["manifest"]["source"]["server"] == f"{info.host}:{info.port}"
    assert result["manifest"]["archives"][0]["verified"] is True
    assert passphrase not in json.dumps(result)


def test_connect_params_that_duplicate_an_option_are_refused_before_any_connection(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    source = dict(certificate_endpoint(info, certs, passphrase), connect_params={"sslcert": str(certs / "x.crt")})
    result = backup(run_module, source, tmp_path / "backups")
    assert result["failed"]
    assert result["problems"] == ["source.connect_params.sslcert: set the option ssl_cert instead"]
    assert not (tmp_path / "backups").exists()


def migrate(run_module, target, tmp_path, command, **extra):
    return run_module("migrator_run", dict(target=target, target_database=CONSOLIDATED, command=command,
                                           log_file=str(tmp_path / "run" / "migrator.log"), **extra))


def test_the_migrator_reaches_the_server_with_the_certificate_through_its_npgsql_string(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    command = [sys.executable, str(Path(REPO) / "tools" / "bin" / "classifiedads-migrator")]
    result = migrate(run_module, certificate_endpoint(info, certs, passphrase), tmp_path, command,
                     expect_tables={"product": ["Products"], "public": ["schemaversions"]})
    assert not result["failed"], result.get("msg")
    assert run_sql(info, CONSOLIDATED, "SELECT count(*) FROM pg_tables WHERE schemaname = 'product'")[0][0] > 0
    assert passphrase not in json.dumps(result) and passphrase not in Path(result["log_file"]).read_text()


def test_the_migrator_log_masks_the_key_passphrase_of_its_connection_string(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    result = migrate(run_module, certificate_endpoint(info, certs, passphrase), tmp_path,
                     ["/bin/sh", "-c", 'echo "conn: $ConnectionStrings__Default"; exit 3'])
    log = Path(result["log_file"]).read_text()
    assert f"SSL Certificate={certs / 'client.crt'};SSL Key={certs / 'client.key'};SSL Password=********" in log
    assert passphrase not in log and passphrase not in json.dumps(result)


def test_a_refused_argument_still_masks_the_key_passphrase_in_the_echoed_invocation(tls, run_module, tmp_path):
    info, certs, passphrase = tls
    result = run_module("backup_set", dict(source=certificate_endpoint(info, certs, passphrase), databases=[DATABASE],
                                           backup_root=str(tmp_path), set_id="tls-1", space_factor="plenty",
                                           _ansible_inject_invocation=True))
    assert result["failed"] and "space_factor" in result["msg"]
    assert "invocation" in result and passphrase not in json.dumps(result)
