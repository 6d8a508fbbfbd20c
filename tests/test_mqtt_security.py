"""Broker security against a real Mosquitto: passwords, TLS with a test CA, the shipped ACL."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from installation.config import TlsConfig
from installation.monitor import monitor_main
from tests.mqtt_fixtures import Recorder, eventually, make_ca, make_publisher, run_broker

ROOT = Path(__file__).resolve().parent.parent


def password_file(folder: Path, users: dict[str, str]) -> Path:
    pw = folder / "passwd"
    for i, (user, password) in enumerate(users.items()):
        flag = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", "-b", *flag, str(pw), user, password], check=True)
    pw.chmod(0o644)  # mosquitto runs as the test user
    return pw


def test_bad_credentials_stop_retrying_with_one_clear_line(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "auth"
    folder.mkdir()
    pw = password_file(folder, {"foyer-1": "right"})
    secret = tmp_path / "secret"
    secret.write_text("wrong\n")
    with run_broker(folder, f"allow_anonymous false\npassword_file {pw}") as broker:
        pub, _ = make_publisher(broker.port, username="foyer-1", password_file=secret)
        with caplog.at_level(logging.INFO, logger="installation.mqtt"):
            pub.start()
            try:
                assert eventually(lambda: pub.auth_failed, 10)
                time.sleep(2.5)  # would be two more attempts with the 1 s backoff
                assert not pub.connected and not pub.ready.is_set()
            finally:
                pub.stop()
        refusals = broker.log.count("not authorised") + broker.log.count("not authorized")
        assert refusals == 1, broker.log[-1500:]
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert "refused user 'foyer-1'" in errors[0].getMessage()
        assert "mqtt.password_file" in errors[0].getMessage()
        assert "wrong" not in caplog.text  # the password is never logged

        # The right password from a systemd credential (LoadCredential=mqtt_password).
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "mqtt_password").write_text("right\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        pub, _ = make_publisher(broker.port, username="foyer-1")
        pub.start()
        try:
            assert eventually(lambda: pub.connected, 10)
        finally:
            pub.stop()

        # The staff monitor logs in through the same client set-up and reads a refusal the same.
        right = tmp_path / "right"
        right.write_text("right\n")
        for password, code in ((secret, 1), (right, 0)):
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


def test_tls_with_a_self_signed_ca_and_client_certificates(tmp_path: Path) -> None:
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
            assert eventually(lambda: pub.connected, 10)
            assert "foyer-1" in broker.log
        finally:
            pub.stop()
        # A CA the broker's certificate does not chain to: the kiosk never connects.
        other = make_ca(tmp_path / "other")
        tls = TlsConfig(ca_file=other["ca"], cert_file=ca["client_crt"], key_file=ca["client_key"])
        pub, _ = make_publisher(broker.port, tls=tls)
        pub.start()
        try:
            time.sleep(1.5)
            assert not pub.connected and pub.connects == 0
        finally:
            pub.stop()


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mqtt\.tls\.ca_file .*missing\.crt not found"):
        make_publisher(1883, tls=TlsConfig(ca_file=tmp_path / "missing.crt"))


def test_sample_acl_confines_each_kiosk(tmp_path: Path) -> None:
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
            # A kiosk cannot write into another kiosk's subtree or discovery topics.
            rogue.publish("bias-mirror/other/stats", "{}", qos=1).wait_for_publish(5)
            rogue.publish("homeassistant/sensor/other/x/config", "{}", qos=1).wait_for_publish(5)
            # Read-only staff cannot command; staff-admin can.
            staff.client.publish("bias-mirror/foyer-1/cmd/pause", "", qos=1).wait_for_publish(5)
            admin.publish("bias-mirror/foyer-1/cmd/language", "de", qos=1).wait_for_publish(5)
            assert staff.wait(lambda: bool(staff.on("bias-mirror/foyer-1/cmd/result")))
            results = [json.loads(p) for p in staff.on("bias-mirror/foyer-1/cmd/result")]
            assert [r["command"] for r in results] == ["language"]
            time.sleep(0.3)
            topics = {t for t, _, _ in staff.messages}
            assert "bias-mirror/other/stats" not in topics
            assert "homeassistant/sensor/other/x/config" not in topics
            assert "bias-mirror/foyer-1/cmd/pause" not in topics
            # No anonymous access at all.
            anon, _ = make_publisher(broker.port, iid="anon")
            anon.start()
            assert eventually(lambda: anon.auth_failed, 5)
            anon.stop()
        finally:
            pub.stop()
            for c in (admin, rogue):
                c.disconnect()
                c.loop_stop()
            staff.close()
