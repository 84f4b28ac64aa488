"""CloudHSM key stores through the AWS CLI (v1): the developer guide's "Deleting an AWS
CloudHSM key store" procedure run as written, pagination, renames and every refusal's name."""

from __future__ import annotations

import base64
import json
import re

from conftest import new_cluster, poll

# The developer guide's Bash command (delete-keystore.md), with only the example store ID
# replaced by ours.
FIND_KEYS = (
    "for key in $(aws kms list-keys --query 'Keys[*].KeyId' --output text) ; \n"
    "do aws kms describe-key --key-id $key | \n"
    "grep '\"CustomKeyStoreId\": \"{store}\"' --context 100; done"
)


def cli_wait_state(sim, store_id: str, state: str) -> dict:
    def check():
        e = sim.aws("kms", "describe-custom-key-stores", "--custom-key-store-id", store_id)
        (entry,) = e["CustomKeyStores"]
        return entry if entry["ConnectionState"] == state else None

    return poll(f"{store_id} to be {state} (AWS CLI)", check, timeout=30, interval=0.05)


def assert_empty_output(r):
    """Operations without output members print nothing (or an empty JSON object)."""
    assert r.rc == 0, r.stderr
    assert r.stdout.strip() in ("", "{}"), r.stdout


def assert_never_printed(sim, *secrets):
    for s in secrets:
        for out in sim.cli_outputs:
            assert s not in out, f"a CLI output contains the key store password {s!r}: {out}"


def test_deleting_a_key_store_as_the_guide_shows(sim, tmp_path):
    password = sim.kmsuser_password
    store = sim.aws(
        "kms", "create-custom-key-store",
        "--custom-key-store-name", "ExampleKeyStore",
        "--cloud-hsm-cluster-id", sim.default_cluster,
        "--trust-anchor-certificate", f"file://{sim.trust_anchor_path}",
        "--key-store-password", password,
    )["CustomKeyStoreId"]
    assert re.fullmatch(r"cks-[0-9a-f]{17}", store), store
    (entry,) = sim.aws("kms", "describe-custom-key-stores", "--custom-key-store-id", store)["CustomKeyStores"]
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["CloudHsmClusterId"] == sim.default_cluster
    assert entry["CustomKeyStoreName"] == "ExampleKeyStore"
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert entry["TrustAnchorCertificate"] == sim.trust_anchor
    assert "ConnectionErrorCode" not in entry
    # Timestamps are JSON numbers (epoch seconds), which the CLI prints as they came.
    assert isinstance(entry["CreationDate"], int | float)

    assert_empty_output(sim.aws_run("kms", "connect-custom-key-store", "--custom-key-store-id", store))
    cli_wait_state(sim, store, "CONNECTED")

    key = sim.aws("kms", "create-key", "--origin", "AWS_CLOUDHSM",
                  "--custom-key-store-id", store, "--description", "in the key store")["KeyMetadata"]
    assert key["Origin"] == "AWS_CLOUDHSM"
    assert key["CustomKeyStoreId"] == store
    assert key["KeyState"] == "Enabled"
    # The key works from the CLI (blobs through fileb:// and base64 output).
    secret = bytes(range(256)) * 4
    (tmp_path / "plaintext").write_bytes(secret)
    enc = sim.aws("kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", f"fileb://{tmp_path / 'plaintext'}",
                  "--encryption-context", "purpose=cli-test")
    assert enc["KeyId"] == key["Arn"]
    (tmp_path / "ciphertext").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    dec = sim.aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ciphertext'}",
                  "--encryption-context", "purpose=cli-test")
    assert base64.b64decode(dec["Plaintext"]) == secret and dec["KeyId"] == key["Arn"]
    # A key outside the store, which the guide's search must not report.
    outsider = sim.kms.create_key(Description="not in a key store")["KeyMetadata"]["KeyId"]

    sched = sim.aws("kms", "schedule-key-deletion", "--key-id", key["KeyId"],
                    "--pending-window-in-days", "7")
    assert sched["KeyState"] == "PendingDeletion"
    assert sched["PendingWindowInDays"] == 7
    assert sched["KeyId"] == key["Arn"]
    assert sched["DeletionDate"] > key["CreationDate"] + 6.9 * 86400

    # The guide's search (list-keys + describe-key + grep) finds the key in the store.
    found = sim.shell(FIND_KEYS.format(store=store))
    assert f'"CustomKeyStoreId": "{store}"' in found.stdout, found.stderr
    assert f'"KeyId": "{key["KeyId"]}"' in found.stdout
    assert '"KeyState": "PendingDeletion"' in found.stdout
    assert outsider not in found.stdout

    # Still connected: refused.
    assert sim.aws_error("kms", "delete-custom-key-store",
                         "--custom-key-store-id", store) == "CustomKeyStoreInvalidStateException"

    assert_empty_output(sim.aws_run("kms", "disconnect-custom-key-store", "--custom-key-store-id", store))
    cli_wait_state(sim, store, "DISCONNECTED")
    # The pending-deletion key keeps its state and date while the store is disconnected...
    meta = sim.aws("kms", "describe-key", "--key-id", key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["DeletionDate"] == sched["DeletionDate"]
    # ...and still counts as a key of the store.
    assert sim.aws_error("kms", "delete-custom-key-store",
                         "--custom-key-store-id", store) == "CustomKeyStoreHasCMKsException"
    assert sim.aws_error("kms", "disconnect-custom-key-store",
                         "--custom-key-store-id", store) == "CustomKeyStoreInvalidStateException"

    # The waiting period ends.
    sim.advance_days(8)
    assert sim.aws_error("kms", "describe-key", "--key-id", key["KeyId"]) == "NotFoundException"
    empty = sim.shell(FIND_KEYS.format(store=store))
    assert store not in empty.stdout
    assert key["KeyId"] not in empty.stdout

    deleted = sim.aws_run("kms", "delete-custom-key-store", "--custom-key-store-id", store)
    assert_empty_output(deleted)
    assert sim.aws_error("kms", "describe-custom-key-stores",
                         "--custom-key-store-id", store) == "CustomKeyStoreNotFoundException"
    assert sim.aws_error("kms", "describe-custom-key-stores",
                         "--custom-key-store-name", "ExampleKeyStore") == "CustomKeyStoreNotFoundException"
    assert sim.aws_error("kms", "delete-custom-key-store",
                         "--custom-key-store-id", store) == "CustomKeyStoreNotFoundException"
    assert sim.aws("kms", "describe-custom-key-stores")["CustomKeyStores"] == []

    # Deleting the store did nothing to the cluster; the key's material, deleted while the
    # store was disconnected, is still on the token (labelled with the key ARN) as an orphan.
    c = sim.control("GET", f"/_sim/clusters/{sim.default_cluster}")
    assert c["state"] == "ACTIVE" and len(c["hsms"]) == 2
    objects = [o for o in sim.token_objects(sim.default_cluster) if o["label"] == key["Arn"]]
    assert [o["owner"] for o in objects] == ["orphan"]
    assert any(o["key_arn"] == key["Arn"] for o in sim.control("GET", "/_sim/orphans")["orphans"])

    # The cluster can back a new store under the same name.
    again = sim.aws(
        "kms", "create-custom-key-store",
        "--custom-key-store-name", "ExampleKeyStore",
        "--cloud-hsm-cluster-id", sim.default_cluster,
        "--trust-anchor-certificate", f"file://{sim.trust_anchor_path}",
        "--key-store-password", password,
    )["CustomKeyStoreId"]
    assert again != store
    assert_never_printed(sim, password)


def test_describe_custom_key_stores_pagination(sim):
    stores = [sim.create_store("store-0")]
    for i in (1, 2):
        c = new_cluster(sim)
        stores.append(sim.create_store(f"store-{i}", cluster=c.id, anchor=c.anchor,
                                       password=c.kmsuser_password))

    every = sim.aws("kms", "describe-custom-key-stores", "--page-size", "1")["CustomKeyStores"]
    assert sorted(s["CustomKeyStoreId"] for s in every) == sorted(stores)

    first = sim.aws("kms", "describe-custom-key-stores", "--max-items", "2", "--page-size", "1")
    assert len(first["CustomKeyStores"]) == 2
    assert first["NextToken"]
    rest = sim.aws("kms", "describe-custom-key-stores", "--max-items", "2", "--page-size", "1",
                   "--starting-token", first["NextToken"])
    assert len(rest["CustomKeyStores"]) == 1
    assert "NextToken" not in rest
    ids = [s["CustomKeyStoreId"] for s in first["CustomKeyStores"] + rest["CustomKeyStores"]]
    assert sorted(ids) == sorted(stores)

    # The raw contract the CLI relies on: Truncated ⇔ NextMarker.
    page = sim.aws("kms", "describe-custom-key-stores", "--limit", "2", "--no-paginate")
    assert page["Truncated"] is True and page["NextMarker"]
    assert len(page["CustomKeyStores"]) == 2
    last = sim.aws("kms", "describe-custom-key-stores", "--limit", "2", "--no-paginate",
                   "--marker", page["NextMarker"])
    assert last["Truncated"] is False and "NextMarker" not in last
    assert len(last["CustomKeyStores"]) == 1
    assert sim.aws_error("kms", "describe-custom-key-stores", "--no-paginate",
                         "--marker", "bogus-marker") == "InvalidMarkerException"


def test_update_and_refusals_by_name(sim, tmp_path):
    password = sim.kmsuser_password
    anchor_file = f"file://{sim.trust_anchor_path}"

    def create(name, cluster, anchor=anchor_file, pw=password):
        return ("kms", "create-custom-key-store", "--custom-key-store-name", name,
                "--cloud-hsm-cluster-id", cluster, "--trust-anchor-certificate", anchor,
                "--key-store-password", pw)

    store = sim.aws(*create("Original", sim.default_cluster))["CustomKeyStoreId"]
    # The guide's retry rule: identical properties while DISCONNECTED answer the same ID
    # (here with the trust anchor given inline, in CRLF form).
    crlf = sim.trust_anchor.replace("\n", "\r\n")
    assert sim.aws(*create("Original", sim.default_cluster, crlf))["CustomKeyStoreId"] == store

    # Rename (allowed while DISCONNECTED and while CONNECTED).
    assert_empty_output(sim.aws_run("kms", "update-custom-key-store", "--custom-key-store-id", store,
                                    "--new-custom-key-store-name", "Renamed"))
    by_name = sim.aws("kms", "describe-custom-key-stores", "--custom-key-store-name", "Renamed")
    assert [s["CustomKeyStoreId"] for s in by_name["CustomKeyStores"]] == [store]
    assert sim.aws_error("kms", "describe-custom-key-stores", "--custom-key-store-name",
                         "Original") == "CustomKeyStoreNotFoundException"
    sim.kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    assert_empty_output(sim.aws_run("kms", "update-custom-key-store", "--custom-key-store-id", store,
                                    "--new-custom-key-store-name", "RenamedWhileConnected"))
    assert sim.store_entry(store)["CustomKeyStoreName"] == "RenamedWhileConnected"
    # Anything else needs DISCONNECTED.
    assert sim.aws_error("kms", "update-custom-key-store", "--custom-key-store-id", store,
                         "--key-store-password", "NewPassw0rd1") == "CustomKeyStoreInvalidStateException"

    # A second cluster, made through cloudhsmv2 + the control door, with its own trust anchor.
    other = new_cluster(sim)
    other_anchor = tmp_path / "otherCA.crt"
    other_anchor.write_text(other.anchor)
    assert sim.aws_error(*create("RenamedWhileConnected", other.id, f"file://{other_anchor}",
                                 other.kmsuser_password)) == "CustomKeyStoreNameInUseException"
    second = sim.aws(*create("Second", other.id, f"file://{other_anchor}",
                             other.kmsuser_password))["CustomKeyStoreId"]
    assert sim.aws_error("kms", "update-custom-key-store", "--custom-key-store-id", second,
                         "--new-custom-key-store-name",
                         "RenamedWhileConnected") == "CustomKeyStoreNameInUseException"
    assert sim.store_entry(second)["CustomKeyStoreName"] == "Second"

    # One store per cluster.
    assert sim.aws_error(*create("Third", sim.default_cluster)) == "CloudHsmClusterInUseException"
    # The default cluster's anchor is not the third cluster's.
    third = new_cluster(sim)
    assert sim.aws_error(*create("Third", third.id)) == "IncorrectTrustAnchorException"
    # Unknown cluster; uninitialized cluster.
    assert sim.aws_error(*create("Third", "cluster-234567abcdefg")) == "CloudHsmClusterNotFoundException"
    fresh = sim.hsm.create_cluster(HsmType="hsm2m.medium",
                                   SubnetIds=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
    assert sim.aws_error(*create("Third", fresh["Cluster"]["ClusterId"])) == "CloudHsmClusterNotActiveException"
    # Constraint violations botocore does not check client side.
    assert sim.aws_error(*create("n" * 257, third.id)) == "ValidationException"
    assert sim.aws_error(*create("Third", "cluster-1a23b4cdefg")) == "ValidationException"
    assert sim.aws_error("kms", "update-custom-key-store", "--custom-key-store-id", second,
                         "--new-custom-key-store-name", "n" * 257) == "ValidationException"
    assert sim.aws_error("kms", "update-custom-key-store", "--custom-key-store-id",
                         "cks-0123456789abcdef0",
                         "--new-custom-key-store-name", "x") == "CustomKeyStoreNotFoundException"

    # None of the refusals created or changed anything.
    listed = sim.aws("kms", "describe-custom-key-stores")["CustomKeyStores"]
    assert sorted((s["CustomKeyStoreId"], s["CustomKeyStoreName"]) for s in listed) == sorted(
        [(store, "RenamedWhileConnected"), (second, "Second")]
    )
    assert_never_printed(sim, password, other.kmsuser_password, "NewPassw0rd1")
    for s in listed:
        assert "KeyStorePassword" not in s
    # The stores' JSON as a whole never carries any password either.
    assert password not in json.dumps(listed)


def test_cli_never_prints_the_key_store_password(sim):
    pw = sim.kmsuser_password
    store = sim.aws("kms", "create-custom-key-store", "--custom-key-store-name", "Secretive",
                    "--cloud-hsm-cluster-id", sim.default_cluster,
                    "--trust-anchor-certificate", f"file://{sim.trust_anchor_path}",
                    "--key-store-password", pw)["CustomKeyStoreId"]
    sim.aws("kms", "describe-custom-key-stores")
    sim.aws("kms", "update-custom-key-store", "--custom-key-store-id", store, "--key-store-password", pw)
    sim.aws("kms", "connect-custom-key-store", "--custom-key-store-id", store)
    cli_wait_state(sim, store, "CONNECTED")
    # Even the --debug log (which shows raw response bodies) never has it: no request here
    # sends it and no response returns it.
    r = sim.aws_run("kms", "describe-custom-key-stores", "--custom-key-store-id", store, "--debug")
    assert r.rc == 0
    assert "Response body" in r.stderr and "Secretive" in r.stderr
    assert_never_printed(sim, pw)
    # Retrying create with the same (still secret) password is not echoed back either.
    r = sim.aws_run("kms", "create-custom-key-store", "--custom-key-store-name", "Secretive",
                    "--cloud-hsm-cluster-id", sim.default_cluster,
                    "--trust-anchor-certificate", f"file://{sim.trust_anchor_path}",
                    "--key-store-password", pw)
    assert r.error_code == "CustomKeyStoreNameInUseException"
    assert_never_printed(sim, pw)
