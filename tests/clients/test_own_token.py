"""Custom key stores over a token made outside cks-sim: the token is initialized by the
module's own tool (`softhsm2-util --init-token`, with its own configuration; on kryoptic,
`pkcs11-tool --init-token` and `--init-pin`, run by scripts/test-module kryoptic), and the server
runs with `provisioner = "none"` and that module's environment as given, the way it runs
against a real HSM. The seed file binds a cluster to the token by label."""

from __future__ import annotations

import base64
import os
import pathlib
import subprocess

from conftest import ControlError, Sim, poll, sim_bin
from test_keystore_cli import cli_wait_state

SOFTHSM_CANDIDATES = [
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
]

CLUSTER = "cluster-labhsm234567"
LABEL = "lab-hsm"
PIN = "LabPin-7391"  # kmsuser's password, and the token's user PIN ([hsm] pin_template "{password}")
INTERNAL_LABEL = "lab-internal"
INTERNAL_PIN = "internal-pin-4826"


def own_module() -> str:
    """The module whose token the tests make: $CKS_SIM_OWN_TOKEN_MODULE (scripts/test-module
    kryoptic sets it to kryoptic), else SoftHSM2 from its usual places."""
    chosen = os.environ.get("CKS_SIM_OWN_TOKEN_MODULE")
    if chosen:
        assert os.path.isfile(chosen), f"CKS_SIM_OWN_TOKEN_MODULE={chosen}: no such file"
        return chosen
    for p in SOFTHSM_CANDIDATES:
        if os.path.isfile(p):
            return p
    raise AssertionError(f"SoftHSM2 not found in {SOFTHSM_CANDIDATES}: scripts/test installs it")


class OwnToken:
    """A SoftHSM2 token directory of our own, with tokens made by softhsm2-util, and a
    simulator configuration and seed that bind a cluster to one of them."""

    def __init__(self, root: pathlib.Path, rotate_password: bool = False, seed_label: str = LABEL,
                 seed_password: str = PIN, like_the_example: bool = False):
        """`like_the_example`: the shape of config.real-hsm.example.toml (the AWS CloudHSM
        library's PIN template "{user}:{password}", one token shared by the internal token and
        the cluster, both logged in as kmsuser, and the seed inside the configuration file)."""
        self.root = root
        self.module = own_module()
        self.kryoptic = "kryoptic" in os.path.basename(self.module)
        own = root / "own-token"
        (own / "tokens").mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("SOFTHSM2_CONF", "KRYOPTIC_CONF", "CKS_SIM_PKCS11_MODULE")}
        if self.kryoptic:
            conf = own / "kryoptic.conf"
            conf.write_text("".join(
                f'[[slots]]\nslot = {n}\ndbtype = "sqlite"\ndbargs = "{own / "tokens" / f"slot-{n}.sql"}"\n\n'
                for n in (1, 2)
            ))
            self.env["KRYOPTIC_CONF"] = str(conf)
        else:
            conf = own / "softhsm2.conf"
            conf.write_text(f"directories.tokendir = {own / 'tokens'}\nobjectstore.backend = file\n"
                            "log.level = ERROR\nslots.removable = false\n")
            self.env["SOFTHSM2_CONF"] = str(conf)
        self.free_slots = [1, 2]
        template = "{user}:{password}" if like_the_example else "{password}"
        self.token_pin = f"kmsuser:{PIN}" if like_the_example else PIN
        self.init_token(LABEL, self.token_pin)
        if like_the_example:
            internal = f'internal_token_label = "{LABEL}"\ninternal_token_user = "kmsuser"\n' \
                       f'internal_token_pin = "{PIN}"\n'
        else:
            self.init_token(INTERNAL_LABEL, INTERNAL_PIN)
            internal = f'internal_token_label = "{INTERNAL_LABEL}"\ninternal_token_pin = "{INTERNAL_PIN}"\n'
        seed_text = (
            f'[[cluster]]\nid = "{CLUSTER}"\n\n[cluster.token]\nlabel = "{seed_label}"\n'
            f"rotate_password = {'true' if rotate_password else 'false'}\n\n"
            f'[[cluster.user]]\nname = "kmsuser"\nrole = "crypto-user"\npassword = "{seed_password}"\n'
        )
        seed = root / "seed.toml"
        seed.write_text(seed_text)
        self.config = root / "cks-sim.toml"
        self.config.write_text(
            f'[hsm]\nmodule = "{self.module}"\nprovisioner = "none"\npin_template = "{template}"\n'
            f"{internal}\n[simulation]\ndefault_seed = false\n"
            + ("\n" + seed_text if like_the_example else f'seed = "{seed}"\n')
        )

    def init_token(self, label: str, pin: str):
        """Make a token with the module's own tools: softhsm2-util for SoftHSM2; pkcs11-tool
        (C_InitToken on a configured slot, then C_InitPIN as SO) for kryoptic."""
        so = "so-pin-5309"
        if self.kryoptic:
            slot = str(self.free_slots.pop(0))
            steps = [
                ["pkcs11-tool", "--module", self.module, "--init-token", "--slot", slot, "--label", label,
                 "--so-pin", so],
                ["pkcs11-tool", "--module", self.module, "--token-label", label, "--init-pin", "--login",
                 "--login-type", "so", "--so-pin", so, "--new-pin", pin],
            ]
        else:
            steps = [["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so, "--pin", pin]]
        for argv in steps:
            p = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, f"{argv[0]} failed: {p.stdout}{p.stderr}"

    def start(self) -> Sim:
        (self.root / "port").unlink(missing_ok=True)
        return Sim(self.root, extra_args=("--config", self.config), env=self.env)

    def start_fails(self) -> str:
        """Start the server, require it to exit, and return what it printed."""
        p = subprocess.run(
            [sim_bin(), "serve", "--listen", "127.0.0.1:0",
             "--data-dir", str(self.root / "data"), "--config", str(self.config)],
            env=dict(self.env, CKS_SIM_LOG="warn"), capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert p.returncode != 0, f"the server started: {p.stdout}{p.stderr}"
        return p.stdout + p.stderr

    def pkcs11_objects(self, pin: str) -> subprocess.CompletedProcess:
        """pkcs11-tool, logged in to the bound token with `pin`, listing its objects."""
        return subprocess.run(
            ["pkcs11-tool", "--module", self.module, "--token-label", LABEL, "--login", "--pin", pin,
             "--list-objects"],
            env=self.env, capture_output=True, text=True, timeout=60,
        )


def create_store(sim: Sim, name: str = "LabKeyStore", password: str = PIN) -> str:
    anchor = sim.data_dir / "clusters" / CLUSTER / "customerCA.crt"
    return sim.aws(
        "kms", "create-custom-key-store",
        "--custom-key-store-name", name,
        "--cloud-hsm-cluster-id", CLUSTER,
        "--trust-anchor-certificate", f"file://{anchor}",
        "--key-store-password", password,
    )["CustomKeyStoreId"]


def connect(sim: Sim, store: str):
    r = sim.aws_run("kms", "connect-custom-key-store", "--custom-key-store-id", store)
    assert r.rc == 0, r.stderr
    cli_wait_state(sim, store, "CONNECTED")


def test_the_seed_procedure_runs_end_to_end_on_a_token_made_outside_cks_sim(tmp_path):
    own = OwnToken(tmp_path)
    sim = own.start()
    try:
        c = sim.control("GET", f"/_sim/clusters/{CLUSTER}")
        assert c["state"] == "ACTIVE" and c["token_label"] == LABEL and c["rotate_password"] is False

        store = create_store(sim)
        connect(sim, store)
        key = sim.aws("kms", "create-key", "--origin", "AWS_CLOUDHSM",
                      "--custom-key-store-id", store)["KeyMetadata"]
        assert key["KeyState"] == "Enabled" and key["CustomKeyStoreId"] == store
        (tmp_path / "plaintext").write_bytes(b"material on a token cks-sim did not make")
        enc = sim.aws("kms", "encrypt", "--key-id", key["KeyId"],
                      "--plaintext", f"fileb://{tmp_path / 'plaintext'}")
        (tmp_path / "ciphertext").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
        dec = sim.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ciphertext'}")
        assert base64.b64decode(dec["Plaintext"]) == (tmp_path / "plaintext").read_bytes()

        sim.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", store)
        cli_wait_state(sim, store, "DISCONNECTED")
        sched = sim.aws("kms", "schedule-key-deletion", "--key-id", key["KeyId"],
                        "--pending-window-in-days", "7")
        assert sched["KeyState"] == "PendingDeletion"
        sim.advance_days(8)
        assert sim.aws_error("kms", "describe-key", "--key-id", key["KeyId"]) == "NotFoundException"
        r = sim.aws_run("kms", "delete-custom-key-store", "--custom-key-store-id", store)
        assert r.rc == 0, r.stderr
        assert sim.aws_error("kms", "describe-custom-key-stores",
                             "--custom-key-store-id", store) == "CustomKeyStoreNotFoundException"
        # cks-sim's own view of the bound token: the material is a recorded orphan.
        objects = [o for o in sim.token_objects(CLUSTER) if o["label"] == key["Arn"]]
        assert [o["owner"] for o in objects] == ["orphan"], sim.token_objects(CLUSTER)
    finally:
        sim.stop()
    # The token's PIN is still the one it was made with, and the key's material is there,
    # labelled with the key's ARN (deleted while disconnected: an orphan, as on AWS).
    listed = own.pkcs11_objects(PIN)
    assert listed.returncode == 0, listed.stderr
    assert f"label:      {key['Arn']}" in listed.stdout, listed.stdout


def test_connect_with_rotation_off_leaves_the_token_pin_alone(tmp_path):
    own = OwnToken(tmp_path)
    sim = own.start()
    try:
        store = create_store(sim)
        connect(sim, store)
        assert sim.control("GET", f"/_sim/clusters/{CLUSTER}/token/pin")["user_pin"] == PIN
        # A second connect after a disconnect logs in with the same, unchanged password.
        sim.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", store)
        cli_wait_state(sim, store, "DISCONNECTED")
        connect(sim, store)
    finally:
        sim.stop()
    assert own.pkcs11_objects(PIN).returncode == 0


def test_with_rotation_off_kmsuser_takes_only_a_password_the_token_already_accepts(tmp_path):
    own = OwnToken(tmp_path)
    sim = own.start()
    path = f"/_sim/clusters/{CLUSTER}/users/kmsuser/password"
    body = {"new_password": "Changed-4417", "auth_user": "kmsuser", "auth_password": PIN}
    try:
        try:
            sim.control("POST", path, body)
            raise AssertionError("a password the token refuses was accepted")
        except ControlError as e:
            message = e.body["message"]
            assert "refuses kmsuser's password" in message and "pin_template" in message, message
            assert "Changed-4417" not in message
        assert sim.control("GET", f"/_sim/clusters/{CLUSTER}/token/pin")["user_pin"] == PIN
    finally:
        sim.stop()
    # The PIN changed on the device, outside cks-sim (with cks-sim stopped: a soft token reads
    # its PIN once per process): now the same change is accepted.
    p = subprocess.run(
        ["pkcs11-tool", "--module", own.module, "--token-label", LABEL, "--login", "--pin", PIN,
         "--change-pin", "--new-pin", "Changed-4417"],
        env=own.env, capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stderr
    sim = own.start()
    try:
        sim.control("POST", path, body)
        assert sim.control("GET", f"/_sim/clusters/{CLUSTER}/token/pin")["user_pin"] == "Changed-4417"
        store = create_store(sim, password="Changed-4417")
        connect(sim, store)
    finally:
        sim.stop()


def test_a_bound_cluster_and_its_keys_survive_a_restart(tmp_path):
    own = OwnToken(tmp_path)
    sim = own.start()
    try:
        store = create_store(sim)
        connect(sim, store)
        key = sim.cloudhsm_key(store)
    finally:
        sim.stop()
    sim = own.start()
    try:
        assert sim.control("GET", f"/_sim/clusters/{CLUSTER}")["token_label"] == LABEL
        poll("the store to reconnect after the restart",
             lambda: sim.store_entry(store)["ConnectionState"] == "CONNECTED")
        blob = sim.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after a restart")["CiphertextBlob"]
        assert sim.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after a restart"
        assert sim.control("GET", "/_sim/health")["status"] == "ok"
    finally:
        sim.stop()


def test_the_example_setup_shares_one_token_between_the_cluster_and_ordinary_keys(tmp_path):
    own = OwnToken(tmp_path, like_the_example=True)
    sim = own.start()
    try:
        store = create_store(sim)
        connect(sim, store)
        in_store = sim.cloudhsm_key(store)
        ordinary = sim.kms.create_key()["KeyMetadata"]
    finally:
        sim.stop()
    sim = own.start()
    try:
        health = sim.control("GET", "/_sim/health")
        # Each side's objects are explained by the other's metadata: nothing is an orphan.
        assert health["reconciliation"]["orphans_found"] == 0, health
        assert health["reconciliation"]["tokens_unreadable"] == 0, health
        assert health["orphans"] == 0, health
        poll("the store to reconnect", lambda: sim.store_entry(store)["ConnectionState"] == "CONNECTED")
        for key in (in_store, ordinary):
            blob = sim.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"shared")["CiphertextBlob"]
            assert sim.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    finally:
        sim.stop()
    listed = own.pkcs11_objects(own.token_pin).stdout
    assert in_store["Arn"] in listed and ordinary["Arn"] in listed, listed


def test_rotate_password_true_rotates_the_token_pin_on_connect(tmp_path):
    own = OwnToken(tmp_path, rotate_password=True)
    sim = own.start()
    try:
        assert sim.control("GET", f"/_sim/clusters/{CLUSTER}")["rotate_password"] is True
        store = create_store(sim)
        connect(sim, store)
        rotated = sim.control("GET", f"/_sim/clusters/{CLUSTER}/token/pin")["user_pin"]
        assert rotated != PIN
        sim.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", store)
        cli_wait_state(sim, store, "DISCONNECTED")
    finally:
        sim.stop()
    assert own.pkcs11_objects(PIN).returncode != 0, "the original PIN still opens the token"
    assert own.pkcs11_objects(rotated).returncode == 0


def test_a_label_no_slot_carries_stops_start_up_with_what_to_check(tmp_path):
    own = OwnToken(tmp_path, seed_label="no-such-token")
    out = own.start_fails()
    assert "no-such-token" in out and "--list-token-slots" in out, out
    assert f'"{LABEL}"' in out, f"the labels the module shows are not named: {out}"


def test_a_bound_token_gone_after_a_restart_stops_start_up_naming_it(tmp_path):
    own = OwnToken(tmp_path)
    own.start().stop()
    if own.kryoptic:
        # kryoptic has no token deletion: its slot's database goes instead.
        for db in (tmp_path / "own-token" / "tokens").glob("slot-1.sql*"):
            db.unlink()
    else:
        p = subprocess.run(["softhsm2-util", "--delete-token", "--token", LABEL],
                           env=own.env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    out = own.start_fails()
    assert f"{CLUSTER} is bound to token \"{LABEL}\"" in out and "--list-token-slots" in out, out
    assert f'"{INTERNAL_LABEL}"' in out, f"the labels the module shows are not named: {out}"


def test_a_pin_the_token_refuses_is_named_at_start_up(tmp_path):
    own = OwnToken(tmp_path, seed_password="NotThePin-1")
    out = own.start_fails()
    assert "refuses kmsuser's password" in out and "pin_template" in out, out
    assert "NotThePin-1" not in out, "the refused password is echoed"
