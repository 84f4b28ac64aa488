"""KMS keys in a CloudHSM key store through boto3: metadata, cryptography, key states,
aliases, tags, policies, deletion, disconnection, connection faults; and the `cks-sim`
client CLI (clock, token objects)."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from botocore.exceptions import ClientError

from conftest import ControlError, error_code

ARN_RE = r"arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def raises(sim, name: str, fn, *args, **kw) -> ClientError:
    """Call and require the modeled exception `name` (class and code)."""
    cls = getattr(sim.kms.exceptions, name)
    with pytest.raises(ClientError) as e:
        fn(*args, **kw)
    assert error_code(e) == name, e.value
    assert isinstance(e.value, cls), type(e.value)
    # Client errors are HTTP 400 (as real KMS answers them) with a request ID.
    meta = e.value.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 400, meta
    assert meta.get("RequestId"), meta
    return e.value


def test_key_metadata_and_cryptography(sim):
    kms = sim.kms
    store = sim.connected_store()
    created = sim.cloudhsm_key(store, Description="application key")
    key = created["KeyId"]
    described = kms.describe_key(KeyId=key)
    headers = described["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert described["ResponseMetadata"]["RequestId"]
    meta = described["KeyMetadata"]
    assert meta == created
    assert re.fullmatch(ARN_RE, meta["Arn"]) and meta["Arn"].endswith(key)
    assert meta["Origin"] == "AWS_CLOUDHSM"
    assert meta["CustomKeyStoreId"] == store
    assert meta["CloudHsmClusterId"] == sim.default_cluster
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["MultiRegion"] is False
    assert meta["Description"] == "application key"
    assert isinstance(meta["CreationDate"], datetime.datetime)
    for absent in ("DeletionDate", "ValidTo", "ExpirationModel", "SigningAlgorithms"):
        assert absent not in meta, absent
    # The backing key on the cluster's token is labelled with the key ARN.
    objs = [o for o in sim.token_objects(sim.default_cluster) if o["label"] == meta["Arn"]]
    assert len(objs) == 1 and objs[0]["owner"] == "kms-key" and objs[0]["key_id"] == key
    assert objs[0]["extractable"] is False

    other = sim.cloudhsm_key(store)["KeyId"]
    ctx = {"purpose": "client-test", "tenant": "42"}

    enc = kms.encrypt(KeyId=key, Plaintext=b"attack at dawn", EncryptionContext=ctx)
    assert enc["KeyId"] == meta["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = enc["CiphertextBlob"]
    assert b"attack at dawn" not in blob
    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)  # no KeyId needed
    assert dec["Plaintext"] == b"attack at dawn"
    assert dec["KeyId"] == meta["Arn"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=meta["Arn"])["Plaintext"] == b"attack at dawn"
    raises(sim, "InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob,
           EncryptionContext={"purpose": "something else", "tenant": "42"})
    raises(sim, "InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    raises(sim, "InvalidCiphertextException", kms.decrypt, CiphertextBlob=tampered, EncryptionContext=ctx)
    raises(sim, "IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other)
    # Two encryptions of the same plaintext differ (random IV).
    assert kms.encrypt(KeyId=key, Plaintext=b"attack at dawn", EncryptionContext=ctx)["CiphertextBlob"] != blob

    # Data keys.
    dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=ctx)
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == meta["Arn"]
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    dk64 = kms.generate_data_key(KeyId=key, NumberOfBytes=64)
    assert len(dk64["Plaintext"]) == 64
    assert kms.decrypt(CiphertextBlob=dk64["CiphertextBlob"])["Plaintext"] == dk64["Plaintext"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key(KeyId=key, KeySpec="AES_256", NumberOfBytes=32)
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.generate_data_key(KeyId=key)
    assert error_code(e) == "ValidationException"
    np = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_128", EncryptionContext=ctx)
    assert "Plaintext" not in np and np["KeyId"] == meta["Arn"]
    assert len(kms.decrypt(CiphertextBlob=np["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"]) == 16

    # ReEncrypt from one key of the store to the other, changing the context.
    ctx2 = {"purpose": "re-encrypted"}
    re_ = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=ctx, DestinationKeyId=other,
                         DestinationEncryptionContext=ctx2)
    other_arn = kms.describe_key(KeyId=other)["KeyMetadata"]["Arn"]
    assert re_["SourceKeyId"] == meta["Arn"] and re_["KeyId"] == other_arn
    out = kms.decrypt(CiphertextBlob=re_["CiphertextBlob"], EncryptionContext=ctx2)
    assert out["Plaintext"] == b"attack at dawn" and out["KeyId"] == other_arn
    raises(sim, "IncorrectKeyException", kms.decrypt, CiphertextBlob=re_["CiphertextBlob"],
           EncryptionContext=ctx2, KeyId=key)
    raises(sim, "InvalidCiphertextException", kms.re_encrypt, CiphertextBlob=blob,
           DestinationKeyId=other)  # wrong (missing) source context

    # Random bytes from the store's cluster.
    r1 = kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=store)["Plaintext"]
    r2 = kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=store)["Plaintext"]
    assert len(r1) == len(r2) == 32 and r1 != r2
    raises(sim, "CustomKeyStoreNotFoundException", kms.generate_random, NumberOfBytes=8,
           CustomKeyStoreId="cks-0123456789abcdef0")

    # Not for keys in a custom key store.
    raises(sim, "UnsupportedOperationException", kms.generate_data_key_pair, KeyId=key, KeyPairSpec="RSA_2048")
    raises(sim, "UnsupportedOperationException", kms.enable_key_rotation, KeyId=key)
    raises(sim, "UnsupportedOperationException", kms.create_key, Origin="AWS_CLOUDHSM",
           CustomKeyStoreId=store, KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    raises(sim, "NotFoundException", kms.describe_key, KeyId="0b0b0b0b-1111-4222-8333-444444444444")


def test_disable_aliases_tags_policies_and_listing(sim):
    kms = sim.kms
    store = sim.connected_store()
    key = sim.cloudhsm_key(store)
    kid, arn = key["KeyId"], key["Arn"]
    key2 = sim.cloudhsm_key(store)["KeyId"]

    # DisableKey / EnableKey.
    kms.disable_key(KeyId=kid)
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and meta["Enabled"] is False
    raises(sim, "DisabledException", kms.encrypt, KeyId=kid, Plaintext=b"x")
    raises(sim, "DisabledException", kms.generate_data_key, KeyId=kid, KeySpec="AES_256")
    kms.enable_key(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    blob = kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]

    # Aliases.
    kms.create_alias(AliasName="alias/app", TargetKeyId=kid)
    aliases = kms.list_aliases(KeyId=kid)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/app"]
    assert aliases[0]["TargetKeyId"] == kid
    assert aliases[0]["AliasArn"].endswith(":alias/app")
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == kid
    assert kms.encrypt(KeyId="alias/app", Plaintext=b"y")["KeyId"] == arn
    assert kms.decrypt(CiphertextBlob=blob, KeyId="alias/app")["Plaintext"] == b"x"
    raises(sim, "AlreadyExistsException", kms.create_alias, AliasName="alias/app", TargetKeyId=key2)
    raises(sim, "InvalidAliasNameException", kms.create_alias, AliasName="alias/aws/mine", TargetKeyId=kid)
    kms.update_alias(AliasName="alias/app", TargetKeyId=key2)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == key2
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key2)["Aliases"]] == ["alias/app"]
    assert kms.list_aliases(KeyId=kid)["Aliases"] == []
    kms.delete_alias(AliasName="alias/app")
    assert "alias/app" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    raises(sim, "NotFoundException", kms.describe_key, KeyId="alias/app")

    # Tags.
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "env", "TagValue": "test"},
                                      {"TagKey": "team", "TagValue": "kms"}])
    tags = kms.list_resource_tags(KeyId=kid)["Tags"]
    assert sorted((t["TagKey"], t["TagValue"]) for t in tags) == [("env", "test"), ("team", "kms")]
    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=kid, TagKeys=["team", "absent"])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    assert kms.list_resource_tags(KeyId=key2)["Tags"] == []

    # Key policies.
    assert kms.list_key_policies(KeyId=kid)["PolicyNames"] == ["default"]
    default = json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"])
    assert default["Version"] == "2012-10-17" and default["Statement"]
    policy = {
        "Version": "2012-10-17",
        "Id": "client-test",
        "Statement": [{
            "Sid": "Enable IAM policies",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    }
    kms.put_key_policy(KeyId=kid, PolicyName="default", Policy=json.dumps(policy))
    assert json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]) == policy
    raises(sim, "MalformedPolicyDocumentException", kms.put_key_policy, KeyId=kid,
           PolicyName="default", Policy="{not json")
    assert json.loads(kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]) == policy

    # ListKeys: paginator and the raw Truncated/NextMarker contract.
    key3 = sim.cloudhsm_key(store)["KeyId"]
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 3
    assert all(len(p["Keys"]) == 1 for p in pages)
    listed = [k["KeyId"] for p in pages for k in p["Keys"]]
    assert sorted(listed) == sorted([kid, key2, key3])
    first = kms.list_keys(Limit=2)
    assert first["Truncated"] is True and first["NextMarker"]
    last = kms.list_keys(Limit=2, Marker=first["NextMarker"])
    assert last["Truncated"] is False and "NextMarker" not in last
    assert all(k["KeyArn"].endswith(k["KeyId"]) for k in first["Keys"] + last["Keys"])
    raises(sim, "InvalidMarkerException", kms.list_keys, Marker="bogus")


def test_schedule_and_cancel_key_deletion(sim):
    kms = sim.kms
    store = sim.connected_store()
    key = sim.cloudhsm_key(store)
    kid = key["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"keep me")["CiphertextBlob"]
    for bad in (6, 31):
        with pytest.raises(ClientError) as e:
            kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=bad)
        assert error_code(e) == "ValidationException", bad
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"

    now = datetime.datetime.fromtimestamp(sim.control("GET", "/_sim/clock")["now"], datetime.timezone.utc)
    out = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert out["KeyId"] == key["Arn"]
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    delta = out["DeletionDate"] - now
    assert datetime.timedelta(days=6, hours=23) < delta < datetime.timedelta(days=7, hours=1)
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["Enabled"] is False
    assert meta["DeletionDate"] == out["DeletionDate"]
    raises(sim, "KMSInvalidStateException", kms.encrypt, KeyId=kid, Plaintext=b"x")
    raises(sim, "KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    raises(sim, "KMSInvalidStateException", kms.schedule_key_deletion, KeyId=kid, PendingWindowInDays=7)
    raises(sim, "KMSInvalidStateException", kms.enable_key, KeyId=kid)
    raises(sim, "KMSInvalidStateException", kms.tag_resource, KeyId=kid,
           Tags=[{"TagKey": "a", "TagValue": "b"}])
    # The store cannot be deleted while it holds the key (and while connected).
    sim.disconnect(store)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    raises(sim, "CustomKeyStoreHasCMKsException", kms.delete_custom_key_store, CustomKeyStoreId=store)

    # Cancel while disconnected; the key comes back Disabled after reconnecting.
    assert kms.cancel_key_deletion(KeyId=kid)["KeyId"] == key["Arn"]
    raises(sim, "KMSInvalidStateException", kms.cancel_key_deletion, KeyId=kid)
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta
    raises(sim, "DisabledException", kms.decrypt, CiphertextBlob=blob)
    kms.enable_key(KeyId=kid)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"keep me"
    # Cancel on a key that is not pending deletion.
    raises(sim, "KMSInvalidStateException", kms.cancel_key_deletion, KeyId=kid)


def test_disconnected_store_makes_keys_unavailable(sim):
    kms = sim.kms
    store = sim.connected_store()
    kid = sim.cloudhsm_key(store)["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"hello")["CiphertextBlob"]
    raises(sim, "CustomKeyStoreInvalidStateException", kms.delete_custom_key_store, CustomKeyStoreId=store)

    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    entry = sim.wait_state(store, "DISCONNECTED")
    assert "ConnectionErrorCode" not in entry
    meta = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert meta["KeyState"] == "Unavailable" and meta["Enabled"] is False
    raises(sim, "KMSInvalidStateException", kms.encrypt, KeyId=kid, Plaintext=b"x")
    raises(sim, "KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    raises(sim, "KMSInvalidStateException", kms.generate_data_key, KeyId=kid, KeySpec="AES_256")
    raises(sim, "CustomKeyStoreInvalidStateException", kms.create_key, Origin="AWS_CLOUDHSM",
           CustomKeyStoreId=store)
    raises(sim, "CustomKeyStoreInvalidStateException", kms.generate_random, NumberOfBytes=8,
           CustomKeyStoreId=store)
    raises(sim, "CustomKeyStoreInvalidStateException", kms.disconnect_custom_key_store,
           CustomKeyStoreId=store)
    # Management still works; DisableKey is deferred until the store is back.
    kms.disable_key(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "while", "TagValue": "disconnected"}])
    kms.create_alias(AliasName="alias/offline", TargetKeyId=kid)
    raises(sim, "CustomKeyStoreHasCMKsException", kms.delete_custom_key_store, CustomKeyStoreId=store)

    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=kid)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "while", "TagValue": "disconnected"}]


def test_connection_error_code_through_a_fault(sim):
    kms = sim.kms
    cluster = sim.default_cluster
    store = sim.create_store("flaky")
    # Injected with the cks-sim CLI (the control door's thin client).
    r = sim.sim_cli("fault", "network-down", "--cluster-id", cluster, "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["network_down"] is True
    try:
        kms.connect_custom_key_store(CustomKeyStoreId=store)
        entry = sim.wait_state(store, "FAILED")
        assert entry["ConnectionErrorCode"] == "NETWORK_ERRORS"
        # FAILED must be disconnected before another connect; no key can be created.
        raises(sim, "CustomKeyStoreInvalidStateException", kms.connect_custom_key_store,
               CustomKeyStoreId=store)
        raises(sim, "CustomKeyStoreInvalidStateException", kms.create_key, Origin="AWS_CLOUDHSM",
               CustomKeyStoreId=store)
        raises(sim, "CustomKeyStoreInvalidStateException", kms.delete_custom_key_store,
               CustomKeyStoreId=store)
    finally:
        r = sim.sim_cli("fault", "network-down", "--cluster-id", cluster, "--clear", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["network_down"] is False
    # Still FAILED until disconnected: clearing the fault does not reconnect by itself.
    assert sim.store_entry(store)["ConnectionState"] == "FAILED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    entry = sim.wait_state(store, "DISCONNECTED")
    assert "ConnectionErrorCode" not in entry
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    entry = sim.wait_state(store, "CONNECTED")
    assert "ConnectionErrorCode" not in entry
    kid = sim.cloudhsm_key(store)["KeyId"]
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=kid, Plaintext=b"ok")["CiphertextBlob"])["Plaintext"] == b"ok"

    # A network failure while CONNECTED: the store stays CONNECTED, crypto fails.
    sim.set_fault(cluster, "network-down", True)
    try:
        raises(sim, "KMSInvalidStateException", kms.encrypt, KeyId=kid, Plaintext=b"x")
        assert sim.store_entry(store)["ConnectionState"] == "CONNECTED"
        assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    finally:
        sim.set_fault(cluster, "network-down", False)
    assert kms.encrypt(KeyId=kid, Plaintext=b"x")["KeyId"].endswith(kid)


def test_sim_cli_clock_and_token_objects(sim):
    kms = sim.kms
    cluster = sim.default_cluster
    store = sim.connected_store()
    doomed = sim.cloudhsm_key(store)
    kept = sim.cloudhsm_key(store)

    def objects():
        r = sim.sim_cli("token", "objects", "--cluster-id", cluster, "--output", "json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["cluster_id"] == cluster
        return {o["label"]: o for o in out["objects"]}

    before = objects()
    for k in (doomed, kept):
        o = before[k["Arn"]]
        assert o["owner"] == "kms-key" and o["key_id"] == k["KeyId"]
        assert o["extractable"] is False

    # The server's use of the token: a key used for cryptography has its session copy.
    kms.encrypt(KeyId=kept["KeyId"], Plaintext=b"x")
    r = sim.sim_cli("token", "stats", "--cluster-id", cluster, "--output", "json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["cluster_id"] == cluster and stats["logged_in"] is True, stats
    assert stats["calls"] > 0 and stats["indexed_keys"] >= 2, stats
    assert stats["session_copies"] >= 1, stats

    kms.create_alias(AliasName="alias/doomed", TargetKeyId=doomed["KeyId"])
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    sim.disconnect(store)  # so KMS cannot remove the material when the window ends

    clock0 = json.loads(sim.sim_cli("clock", "show", "--output", "json").stdout)
    r = sim.sim_cli("clock", "advance", "8d")
    assert r.returncode == 0, r.stderr
    clock1 = sim.control("GET", "/_sim/clock")
    assert clock1["offset_seconds"] - clock0["offset_seconds"] == pytest.approx(8 * 86400)
    assert clock1["now"] - clock0["now"] >= 8 * 86400

    raises(sim, "NotFoundException", kms.describe_key, KeyId=doomed["KeyId"])
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [kept["KeyId"]]
    assert "alias/doomed" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    after = objects()
    assert after[doomed["Arn"]]["owner"] == "orphan"
    assert after[doomed["Arn"]]["key_id"] is None
    assert after[doomed["Arn"]]["fingerprint"] == before[doomed["Arn"]]["fingerprint"]
    assert after[kept["Arn"]]["owner"] == "kms-key"
    r = sim.sim_cli("token", "orphans", "--output", "json")
    assert r.returncode == 0, r.stderr
    orphans = json.loads(r.stdout)["orphans"]
    assert [o["key_arn"] for o in orphans] == [doomed["Arn"]]
    assert orphans[0]["cluster_id"] == cluster

    # The kept key is unaffected (after reconnecting) and bad durations are refused.
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    assert kms.describe_key(KeyId=kept["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    r = sim.sim_cli("clock", "advance", "8 fortnights")
    assert r.returncode != 0 and r.stderr
    assert sim.control("GET", "/_sim/clock")["offset_seconds"] == clock1["offset_seconds"]


def test_kmsuser_password_rotation_and_the_guides_reset_procedure(sim):
    """Connect rotates kmsuser's password; fix-keystore's "log in as kmsuser" procedure
    (disconnect → admin resets → log in/out → UpdateCustomKeyStore → connect) works, and the
    connection error codes for a stale password and a foreign kmsuser session show up."""
    kms = sim.kms
    cluster = sim.default_cluster
    users = f"/_sim/clusters/{cluster}/users"
    original = sim.kmsuser_password
    store = sim.connected_store()
    kid = sim.cloudhsm_key(store)["KeyId"]

    # While connected nobody else can log in as kmsuser.
    with pytest.raises(ControlError) as e:
        sim.control("POST", f"{users}/kmsuser/login", {"password": original})
    assert e.value.status in (400, 403) and e.value.body["__type"] == "CloudHsmAccessDeniedException"
    sim.disconnect(store)
    # The password the customer gave KMS no longer works: KMS rotated it on connect.
    with pytest.raises(ControlError) as e:
        sim.control("POST", f"{users}/kmsuser/login", {"password": original})
    assert e.value.body["__type"] == "CloudHsmAccessDeniedException"

    # An admin resets it; KMS does not know the new password yet.
    r = sim.sim_cli("user", "change-password", "--cluster-id", cluster, "--username", "kmsuser",
                    "--new-password", "ResetPassw0rd", "--auth-user", "admin",
                    "--auth-password", sim.admin_password)
    assert r.returncode == 0, r.stderr
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert sim.wait_state(store, "FAILED")["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
    sim.disconnect(store)

    # The customer logs in as kmsuser (to audit key material) and tells KMS the password,
    # but forgets to log out: KMS cannot log in.
    sim.control("POST", f"{users}/kmsuser/login", {"password": "ResetPassw0rd"})
    kms.update_custom_key_store(CustomKeyStoreId=store, KeyStorePassword="ResetPassw0rd")
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert sim.wait_state(store, "FAILED")["ConnectionErrorCode"] == "USER_LOGGED_IN"
    sim.disconnect(store)

    r = sim.sim_cli("user", "logout", "--cluster-id", cluster, "--username", "kmsuser")
    assert r.returncode == 0, r.stderr
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    entry = sim.wait_state(store, "CONNECTED")
    assert "ConnectionErrorCode" not in entry
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=kid, Plaintext=b"p")["CiphertextBlob"])["Plaintext"] == b"p"
    # Rotated again.
    sim.disconnect(store)
    with pytest.raises(ControlError):
        sim.control("POST", f"{users}/kmsuser/login", {"password": "ResetPassw0rd"})
    kmsuser = [u for u in sim.control("GET", users)["users"] if u["username"] == "kmsuser"][0]
    assert kmsuser["logged_in"] is False and kmsuser["locked"] is False
    # And a plain disconnect → connect cycle still works with KMS's own password.
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")


def test_transitional_states_are_observable(sim):
    """With the control door holding connects and slowing disconnects, CONNECTING and
    DISCONNECTING show up, and the operations refused in them are refused."""
    kms = sim.kms
    store = sim.connected_store()
    kid = sim.cloudhsm_key(store)["KeyId"]
    sim.disconnect(store)

    settings = sim.control("POST", "/_sim/settings", {"hold_connections": True})
    assert settings["hold_connections"] is True
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert sim.store_entry(store)["ConnectionState"] == "CONNECTING"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
    kms.connect_custom_key_store(CustomKeyStoreId=store)  # accepted, no change
    assert sim.store_entry(store)["ConnectionState"] == "CONNECTING"
    raises(sim, "CustomKeyStoreInvalidStateException", kms.update_custom_key_store,
           CustomKeyStoreId=store, NewCustomKeyStoreName="renamed")
    raises(sim, "CustomKeyStoreInvalidStateException", kms.create_key, Origin="AWS_CLOUDHSM",
           CustomKeyStoreId=store)
    raises(sim, "CustomKeyStoreInvalidStateException", kms.delete_custom_key_store,
           CustomKeyStoreId=store)
    # Disconnect cancels the attempt.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "DISCONNECTED")

    sim.control("POST", "/_sim/settings", {"hold_connections": False, "disconnect_delay_ms": 1500})
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    assert sim.store_entry(store)["ConnectionState"] == "DISCONNECTING"
    raises(sim, "CustomKeyStoreInvalidStateException", kms.connect_custom_key_store, CustomKeyStoreId=store)
    raises(sim, "CustomKeyStoreInvalidStateException", kms.disconnect_custom_key_store, CustomKeyStoreId=store)
    raises(sim, "CustomKeyStoreInvalidStateException", kms.delete_custom_key_store, CustomKeyStoreId=store)
    sim.wait_state(store, "DISCONNECTED")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
