"""Broker security against a real Mosquitto: passwords, TLS with a test CA, the shipped ACL."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from installation.config import TlsConfig
from installation.monitor import monitor_main
from installation.mqtt import MqttPublisher
from installation.stats import StatsAggregator
from tests.mqtt_fixtures import Broker, Recorder, make_ca, make_publisher, run_broker
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


def password_file(folder: Path, users: dict[str, str]) -> Path:
    pw = folder / "passwd"
    for i, (user, password) in enumerate(users.items()):
        flag = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *flag, str(pw), user, password], check=True)
    pw.chmod(0o644)  # mosquitto runs as the test user
    return pw


@contextlib.contextmanager
def kiosk_login(
    tmp_path: Path, kiosk_password: str
) -> Iterator[tuple[Broker, MqttPublisher, StatsAggregator, Path]]:
    """A broker that knows user foyer-1 with password "right" (its files in tmp_path/auth) and a
    kiosk publisher, not started, logging in as foyer-1 with `kiosk_password` from a password
    file (the last item; rewrite it to change what the kiosk sends)."""
    folder = tmp_path / "auth"
    folder.mkdir()
    pw = password_file(folder, {"foyer-1": "right"})
    secret = tmp_path / "secret"
    secret.write_text(kiosk_password + "\n")
    with run_broker(folder, f"allow_anonymous false\npassword_file {pw}") as broker:
        pub, agg = make_publisher(broker.port, username="foyer-1", password_file=secret)
        yield broker, pub, agg, secret


def test_bad_credentials_are_retried_slowly_reported_and_recovered(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A wrong password (or a broker whose password file is briefly wrong) must not disable
    stats for good: the kiosk retries on a long backoff (60 s doubling to 10 min; shortened
    here), logs once per change, counts mqtt_auth in stats.errors and connects once the
    broker accepts it again."""
    with kiosk_login(tmp_path, "s3cret-typo") as (broker, pub, agg, secret):
        folder = tmp_path / "auth"
        assert pub.auth_retry_s == (60, 600)
        pub.auth_retry_s = (1, 2)  # the same doubling, in seconds a test can wait for
        with caplog.at_level(logging.INFO, logger="installation.mqtt"):
            pub.start()
            try:
                assert wait_until(lambda: pub.auth_failed, 10)
                assert pub.problem is not None and "refused" in pub.problem
                refusals = lambda: broker.log.count("not authorised")  # noqa: E731
                assert wait_until(lambda: refusals() >= 3, 15)  # still retrying
                assert not pub.connected and not pub.ready.is_set()
                errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
                assert len(errors) == 1  # once per change, not once per attempt
                assert "refused user 'foyer-1'" in errors[0].getMessage()
                assert "mqtt.password_file" in errors[0].getMessage()
                # The broker's password is fixed (or the outage ends): the kiosk gets back in.
                password_file(folder, {"foyer-1": "s3cret-typo"})
                assert broker.proc is not None
                broker.proc.send_signal(signal.SIGHUP)  # mosquitto reloads its password file
                assert wait_until(lambda: pub.connected, 15)
                assert not pub.auth_failed and pub.problem is None
                assert any("accepted" in r.getMessage() for r in caplog.records)
                # Counted once, in the interval it happened (sent once the broker let it in).
                assert agg.snapshot().cumulative.errors.get("mqtt_auth") == 1
            finally:
                pub.stop()
        assert "s3cret-typo" not in caplog.text  # the password is never logged

        # The right password from a systemd credential (LoadCredential=mqtt_password).
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "mqtt_password").write_text("s3cret-typo\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        from_creds, _ = make_publisher(broker.port, username="foyer-1")
        from_creds.start()
        try:
            assert wait_until(lambda: from_creds.connected, 10)
        finally:
            from_creds.stop()

        # The staff monitor logs in through the same client set-up and reads a refusal the same
        # (the broker's password is now the one in `secret`).
        wrong = tmp_path / "wrong"
        wrong.write_text("right\n")
        for password, code in ((wrong, 1), (secret, 0)):
            once = argparse.Namespace(
                host="127.0.0.1",
                port=broker.port,
                username="foyer-1",
                password_file=password,
                ca_file=None,
                prefix="bias-mirror",
                stale_s=180.0,
                once=True,
            )
            assert monitor_main(once) == code
            err = capsys.readouterr().err
            assert ("not authorized" in err.lower()) == (code == 1), err


def test_tls_with_a_self_signed_ca_and_client_certificates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = make_ca(tmp_path / "tls", client=True)
    extra = (
        f"allow_anonymous true\ncafile {ca['ca']}\ncertfile {ca['server_crt']}\n"
        f"keyfile {ca['server_key']}\nrequire_certificate true\n"
    )
    with run_broker(tmp_path / "tls", extra) as broker:
        tls = TlsConfig(ca_file=ca["ca"], cert_file=ca["client_crt"], key_file=ca["client_key"])
        pub, _ = make_publisher(broker.port, tls=tls)
        pub.start()
        try:
            assert wait_until(lambda: pub.connected, 10)
            assert "foyer-1" in broker.log
        finally:
            pub.stop()
        # A CA the broker's certificate does not chain to: the kiosk never connects.
        other = make_ca(tmp_path / "other")
        tls = TlsConfig(ca_file=other["ca"], cert_file=ca["client_crt"], key_file=ca["client_key"])
        pub, _ = make_publisher(broker.port, tls=tls)
        with caplog.at_level(logging.WARNING, logger="installation.mqtt"):
            pub.start()
            try:
                # The handshake fails: the publisher says so (once) and never counts a connect.
                assert wait_until(lambda: "unreachable" in caplog.text, 10), caplog.text
                assert not pub.connected and pub.connects == 0
            finally:
                pub.stop()


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mqtt\.tls\.ca_file: .*missing\.crt not found"):
        make_publisher(1883, tls=TlsConfig(ca_file=tmp_path / "missing.crt"))


def test_sample_acl_confines_each_kiosk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The shipped ACL: a kiosk writes only its own subtree; staff read but cannot command."""
    folder = tmp_path / "acl"
    folder.mkdir()
    pw = password_file(folder, {"foyer-1": "pw", "staff": "pw", "staff-admin": "pw"})
    sample = ROOT / "systemd" / "mosquitto"
    (folder / "acl").write_text((sample / "bias-mirror.acl").read_text())
    # The shipped broker config, with this test's paths and a loopback port instead of 1883.
    conf = (sample / "bias-mirror.conf").read_text()
    conf = conf.replace("/etc/mosquitto/bias-mirror.passwd", str(pw))
    conf = conf.replace("/etc/mosquitto/bias-mirror.acl", str(folder / "acl"))
    conf = conf.replace("persistence true", "").replace("listener 1883\n", "")
    with run_broker(folder, conf) as broker:
        staff = Recorder(broker.port, username="staff", password="pw")
        secret = tmp_path / "secret"
        secret.write_text("pw")
        # The real publisher under the ACL: birth, state, discovery, stats, commands all allowed.
        pub, _ = make_publisher(broker.port, username="foyer-1", password_file=secret)
        pub.start()
        admin = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="admin")
        admin.username_pw_set("staff-admin", "pw")
        admin.connect("127.0.0.1", broker.port)
        admin.loop_start()
        rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue")
        rogue.username_pw_set("foyer-1", "pw")
        rogue.connect("127.0.0.1", broker.port)
        rogue.loop_start()
        try:
            assert pub.ready.wait(10)
            assert staff.wait(lambda: bool(staff.on("bias-mirror/foyer-1/stats")))
            assert staff.on("bias-mirror/foyer-1/available") == [b"online"]
            assert json.loads(staff.on("bias-mirror/foyer-1/state")[0])["language"] == "en"
            assert staff.on("homeassistant/sensor/foyer-1/sessions/config")
            assert staff.wait(
                lambda: bool(staff.on("homeassistant/binary_sensor/foyer-1/camera/config"))
            )
            # A kiosk cannot write into another kiosk's subtree or discovery topics.
            rogue.publish("bias-mirror/other/stats", "{}", qos=1).wait_for_publish(5)
            rogue.publish("homeassistant/sensor/other/x/config", "{}", qos=1).wait_for_publish(5)
            # Read-only staff cannot command; staff-admin can.
            staff.client.publish("bias-mirror/foyer-1/cmd/pause", "{}", qos=1).wait_for_publish(5)
            admin.publish("bias-mirror/foyer-1/cmd/language", "de", qos=1).wait_for_publish(5)
            assert staff.wait(lambda: bool(staff.on("bias-mirror/foyer-1/cmd/result")))
            results = [json.loads(p) for p in staff.on("bias-mirror/foyer-1/cmd/result")]
            assert [r["command"] for r in results] == ["language"]
            # Mosquitto routes a QoS 1 publish to its subscribers before it acknowledges it, and
            # delivers to one subscriber in order: the rogue's and staff's publishes above were
            # acknowledged before staff-admin sent cmd/language, so once staff holds that, any
            # of them the broker had let through would be there too.
            assert staff.wait(lambda: bool(staff.on("bias-mirror/foyer-1/cmd/language")))
            topics = {t for t, _, _ in staff.messages}
            assert "bias-mirror/other/stats" not in topics
            assert "homeassistant/sensor/other/x/config" not in topics
            assert "bias-mirror/foyer-1/cmd/pause" not in topics
            # No anonymous access at all.
            anon, _ = make_publisher(broker.port, iid="anon")
            with caplog.at_level(logging.ERROR, logger="installation.mqtt"):
                anon.start()
                assert wait_until(lambda: anon.auth_failed, 5)
            anon.stop()
            # Named as what it is, not "refused user None".
            refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert refused and "refused an anonymous login (set mqtt.username)" in refused[-1]
        finally:
            pub.stop()
            for c in (admin, rogue):
                c.disconnect()
                c.loop_stop()
            staff.close()


def test_a_password_file_fixed_after_a_refusal_is_read_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The password was read once into the client: fixing the kiosk's password file after a
    refused login changed nothing until a restart. Each retry reads it again."""
    with kiosk_login(tmp_path, "wrong") as (_broker, pub, _agg, secret):
        pub.auth_retry_s = (1, 2)
        with caplog.at_level(logging.INFO, logger="installation.mqtt"):
            pub.start()
            try:
                assert wait_until(lambda: pub.auth_failed, 10)
                secret.write_text("right\n")  # the technician fixes the kiosk's side only
                assert wait_until(lambda: pub.connected, 15)
                assert not pub.auth_failed
            finally:
                pub.stop()


def test_a_port_that_is_no_mqtt_broker_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`port: 8883` without `tls:` (or any service that is not MQTT): the TCP connect works,
    paho reports no connect failure, and the kiosk retried for ever without a line. Now one
    warning that names the likely fix, then quiet retries."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # not an MQTT CONNACK
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    pub, _ = make_publisher(server.getsockname()[1])
    try:
        with caplog.at_level(logging.DEBUG, logger="installation.mqtt"):
            pub.start()
            assert wait_until(lambda: len(accepted) >= 3, 20)  # it keeps retrying
            assert not pub.connected
        lines = [
            r for r in caplog.records if "closed the connection before accepting it" in r.message
        ]
        warned = [r for r in lines if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "does it need TLS (mqtt.tls" in warned[0].getMessage()
        assert len(lines) >= 2  # the later ones at debug level
    finally:
        pub.stop()
        stop.set()
        thread.join(5)
        server.close()
