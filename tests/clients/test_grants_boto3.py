"""Grants through boto3 and the AWS CLI: a grant on a key in a CloudHSM key store created,
used (its token in Encrypt and Decrypt), listed, retired and revoked; errors as exceptions."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from conftest import error_code

ROLE = "arn:aws:iam::111122223333:role/app"
RETIRER = "arn:aws:iam::111122223333:role/retirer"


def test_grant_used_listed_retired_and_revoked_with_boto3(sim):
    kms = sim.kms
    key = sim.cloudhsm_key(sim.connected_store())["KeyId"]
    grant = kms.create_grant(
        KeyId=key,
        GranteePrincipal=ROLE,
        RetiringPrincipal=RETIRER,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"purpose": "test"}},
        Name="boto3-grant",
    )
    assert re.fullmatch(r"[0-9a-f]{64}", grant["GrantId"])
    token = grant["GrantToken"]
    ct = kms.encrypt(KeyId=key, Plaintext=b"hello", EncryptionContext={"purpose": "test"},
                     GrantTokens=[token])["CiphertextBlob"]
    pt = kms.decrypt(CiphertextBlob=ct, EncryptionContext={"purpose": "test"},
                     GrantTokens=[token])["Plaintext"]
    assert pt == b"hello"

    listed = kms.list_grants(KeyId=key)["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    entry = listed[0]
    assert entry["KeyId"].endswith(key) and entry["KeyId"].startswith("arn:aws:kms:us-east-1:")
    assert entry["Name"] == "boto3-grant"
    assert entry["Operations"] == ["Encrypt", "Decrypt"]
    assert entry["Constraints"] == {"EncryptionContextSubset": {"purpose": "test"}}
    assert kms.list_retirable_grants(RetiringPrincipal=RETIRER)["Grants"][0]["GrantId"] == grant["GrantId"]

    again = kms.create_grant(KeyId=key, GranteePrincipal=ROLE, RetiringPrincipal=RETIRER,
                             Operations=["Decrypt", "Encrypt"],
                             Constraints={"EncryptionContextSubset": {"purpose": "test"}},
                             Name="boto3-grant")
    assert again["GrantId"] == grant["GrantId"] and again["GrantToken"] != token

    kms.retire_grant(GrantToken=again["GrantToken"])
    assert kms.list_grants(KeyId=key)["Grants"] == []

    second = kms.create_grant(KeyId=key, GranteePrincipal=ROLE, Operations=["Encrypt"])
    kms.revoke_grant(KeyId=key, GrantId=second["GrantId"])
    assert kms.list_grants(KeyId=key)["Grants"] == []
    with pytest.raises(ClientError) as e:
        kms.revoke_grant(KeyId=key, GrantId=second["GrantId"])
    assert error_code(e) == "NotFoundException"
    assert isinstance(e.value, kms.exceptions.NotFoundException)


def test_a_bad_grant_token_is_invalid_grant_token_exception_with_boto3(sim):
    kms = sim.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=["forged-token"])
    assert error_code(e) == "InvalidGrantTokenException"
    assert isinstance(e.value, kms.exceptions.InvalidGrantTokenException)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_grant_commands_of_the_aws_cli(sim):
    key = sim.aws("kms", "create-key")["KeyMetadata"]["KeyId"]
    made = sim.aws("kms", "create-grant", "--key-id", key, "--grantee-principal", ROLE,
                   "--operations", "GenerateDataKey", "DescribeKey")
    listed = sim.aws("kms", "list-grants", "--key-id", key)["Grants"]
    assert [g["GrantId"] for g in listed] == [made["GrantId"]]
    assert listed[0]["Operations"] == ["GenerateDataKey", "DescribeKey"]
    sim.aws("kms", "generate-data-key", "--key-id", key, "--key-spec", "AES_256",
            "--grant-tokens", made["GrantToken"])
    assert sim.aws_error("kms", "create-grant", "--key-id", key, "--grantee-principal", ROLE,
                         "--operations", "Sign") == "ValidationException"
    sim.aws("kms", "retire-grant", "--key-id", key, "--grant-id", made["GrantId"])
    assert sim.aws("kms", "list-grants", "--key-id", key)["Grants"] == []
