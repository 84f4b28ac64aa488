"""Multi-Region keys through boto3 and the AWS CLI: a primary in us-east-1, a replica in
eu-west-1, a ciphertext crossing regions, the primary moved, and the refusals."""

from __future__ import annotations

import base64
import re

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def test_a_key_replicated_with_the_cli_decrypts_in_the_other_region_with_boto3(sim):
    created = sim.aws("kms", "create-key", "--multi-region", "--description", "primary")
    key = created["KeyMetadata"]["KeyId"]
    assert re.fullmatch(r"mrk-[0-9a-f]{32}", key), key
    assert created["KeyMetadata"]["MultiRegion"] is True
    replica = sim.aws("kms", "replicate-key", "--key-id", key, "--replica-region", "eu-west-1")
    meta = replica["ReplicaKeyMetadata"]
    assert meta["KeyId"] == key
    assert meta["Arn"].startswith("arn:aws:kms:eu-west-1:")
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert meta["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == "us-east-1"

    blob = sim.kms.encrypt(KeyId=key, Plaintext=b"from Virginia")["CiphertextBlob"]
    away = sim.client("kms", region="eu-west-1")
    out = away.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"from Virginia"
    assert out["KeyId"] == meta["Arn"]

    # The CLI in eu-west-1 sees the replica, and moving the primary there works.
    described = sim.aws("kms", "describe-key", "--key-id", key, "--region", "eu-west-1")
    assert described["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    sim.aws("kms", "update-primary-region", "--key-id", key, "--primary-region", "eu-west-1")
    conf = away.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
    assert conf["MultiRegionKeyType"] == "PRIMARY"
    assert [r["Region"] for r in conf["ReplicaKeys"]] == ["us-east-1"]

    # A CLI-made ciphertext (base64 on stdout) decrypts in the other region too (the CLI v1
    # sends a text --plaintext as its bytes).
    enc = sim.aws("kms", "encrypt", "--key-id", key, "--plaintext", "cli", "--region", "eu-west-1")
    back = sim.kms.decrypt(CiphertextBlob=base64.b64decode(enc["CiphertextBlob"]))
    assert back["Plaintext"] == b"cli"


def test_replicate_key_refusals_reach_boto3_as_modeled_exceptions(sim):
    kms = sim.kms
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")
    with pytest.raises(kms.exceptions.AlreadyExistsException) as e:
        kms.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")
    assert error_code(e) == "AlreadyExistsException"
    single = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        kms.replicate_key(KeyId=single, ReplicaRegion="eu-west-1")
    with pytest.raises(ClientError) as e:
        kms.replicate_key(KeyId=key, ReplicaRegion="us-east-1")
    assert error_code(e) == "ValidationException"
    assert sim.aws_error("kms", "replicate-key", "--key-id", key,
                         "--replica-region", "eu-west-1") == "AlreadyExistsException"


def test_a_primary_with_a_replica_is_pending_replica_deletion(sim):
    kms = sim.kms
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")
    out = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion"
    assert "DeletionDate" not in out
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "PendingReplicaDeletion"
    assert meta["PendingDeletionWindowInDays"] == 7
