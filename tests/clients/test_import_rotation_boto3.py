"""Imported key material and key rotation through boto3: the material is wrapped with the
`cryptography` package as AWS's import instructions describe (RSAES-OAEP with SHA-256 under
the public key from GetParametersForImport), imported, used, expired by the simulated clock;
a key is rotated on demand and automatically, and its old ciphertexts still decrypt."""

from __future__ import annotations

import datetime
import os

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from conftest import error_code


def wrap_oaep_sha256(public_der: bytes, material: bytes) -> bytes:
    pub = serialization.load_der_public_key(public_der)
    return pub.encrypt(
        material,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )


def test_import_use_and_expiry_of_key_material(sim):
    kms = sim.kms
    key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    params = kms.get_parameters_for_import(
        KeyId=key, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    material = os.urandom(32)
    now = sim.control("GET", "/_sim/clock")["now"]
    valid_to = datetime.datetime.fromtimestamp(now + 2 * 86400, tz=datetime.timezone.utc)
    imported = kms.import_key_material(
        KeyId=key,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap_oaep_sha256(params["PublicKey"], material),
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        ValidTo=valid_to,
    )
    assert len(imported["KeyMaterialId"]) == 64
    meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    blob = kms.encrypt(KeyId=key, Plaintext=b"imported")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported"
    sim.advance_days(3)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(refused) == "KMSInvalidStateException"


def test_rotation_keeps_old_ciphertexts_decrypting(sim):
    kms = sim.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    old = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 90
    kms.rotate_key_on_demand(KeyId=key)
    sim.advance_days(91)
    rotations = kms.list_key_rotations(KeyId=key)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND", "AUTOMATIC"]
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
