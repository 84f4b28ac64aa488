"""RSA, ECC and HMAC KMS keys through boto3 (and the AWS CLI), checked with the `cryptography`
package: every key spec and usage the simulator's token offers (it says which at GET
/_sim/key-specs), each used for what it is for, with the results verified outside KMS."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conftest import error_code

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
CURVES = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}


def offered(sim) -> list[tuple[str, str]]:
    return [(k["KeySpec"], k["KeyUsage"]) for k in sim.control("GET", "/_sim/key-specs")["key_specs"]]


def public_key(kms, key_id):
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


def verify_outside(pub, algorithm: str, message: bytes, signature: bytes):
    """Verify a KMS signature with `cryptography`; raises InvalidSignature if it is wrong."""
    h = HASHES[algorithm.rsplit("_", 1)[1]]()
    if algorithm.startswith("ECDSA"):
        pub.verify(signature, message, ec.ECDSA(h))
    elif algorithm.startswith("RSASSA_PSS"):
        pub.verify(signature, message, padding.PSS(padding.MGF1(h), h.digest_size), h)
    else:
        pub.verify(signature, message, padding.PKCS1v15(), h)


def test_the_token_offers_the_usual_specs(sim):
    kinds = offered(sim)
    for spec in ["SYMMETRIC_DEFAULT", "RSA_2048", "ECC_NIST_P256", "HMAC_256"]:
        assert any(s == spec for s, _ in kinds), kinds


def test_signing_keys_sign_what_cryptography_verifies(sim):
    kms = sim.kms
    message = b"signed by boto3 through cks-sim"
    for spec, usage in offered(sim):
        if usage != "SIGN_VERIFY":
            continue
        key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        assert key["KeySpec"] == spec and key["KeyUsage"] == "SIGN_VERIFY"
        pub = public_key(kms, key["KeyId"])
        for algorithm in key["SigningAlgorithms"]:
            sig = kms.sign(KeyId=key["KeyId"], Message=message, SigningAlgorithm=algorithm)["Signature"]
            verify_outside(pub, algorithm, message, sig)
            with pytest.raises(InvalidSignature):
                verify_outside(pub, algorithm, message + b"!", sig)
            ok = kms.verify(KeyId=key["KeyId"], Message=message, Signature=sig, SigningAlgorithm=algorithm)
            assert ok["SignatureValid"] is True


def test_rsa_encryption_keys_decrypt_what_cryptography_encrypts(sim):
    kms = sim.kms
    for spec, usage in offered(sim):
        if usage != "ENCRYPT_DECRYPT" or not spec.startswith("RSA"):
            continue
        key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        pub = public_key(kms, key["KeyId"])
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == int(spec[4:])
        for algorithm, h in [("RSAES_OAEP_SHA_1", hashes.SHA1), ("RSAES_OAEP_SHA_256", hashes.SHA256)]:
            ct = pub.encrypt(b"for KMS only", padding.OAEP(padding.MGF1(h()), h(), None))
            out = kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=ct, EncryptionAlgorithm=algorithm)
            assert out["Plaintext"] == b"for KMS only"
            assert out["EncryptionAlgorithm"] == algorithm


def test_key_agreement_keys_derive_what_cryptography_derives(sim):
    kms = sim.kms
    for spec, usage in offered(sim):
        if usage != "KEY_AGREEMENT":
            continue
        key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        assert key["KeyAgreementAlgorithms"] == ["ECDH"]
        peer = ec.generate_private_key(CURVES[spec]())
        peer_der = peer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        out = kms.derive_shared_secret(KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
        assert out["SharedSecret"] == peer.exchange(ec.ECDH(), public_key(kms, key["KeyId"]))


def test_hmac_keys_verify_their_macs_and_refuse_tampered_ones(sim):
    kms = sim.kms
    for spec, usage in offered(sim):
        if usage != "GENERATE_VERIFY_MAC":
            continue
        key = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        (algorithm,) = key["MacAlgorithms"]
        mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"token", MacAlgorithm=algorithm)["Mac"]
        assert len(mac) * 8 == int(spec[5:])
        assert kms.verify_mac(KeyId=key["KeyId"], Message=b"token", MacAlgorithm=algorithm, Mac=mac)["MacValid"]
        with pytest.raises(ClientError) as e:
            kms.verify_mac(KeyId=key["KeyId"], Message=b"tokeN", MacAlgorithm=algorithm, Mac=mac)
        assert error_code(e) == "KMSInvalidMacException"


def test_data_key_pairs_load_in_cryptography_and_match(sim):
    kms = sim.kms
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    for spec in ["RSA_2048", "ECC_NIST_P256"]:
        out = kms.generate_data_key_pair(KeyId=key, KeyPairSpec=spec, EncryptionContext={"app": "x"})
        private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
        mine = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert mine == out["PublicKey"]
        back = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"app": "x"})
        assert back["Plaintext"] == out["PrivateKeyPlaintext"]


def test_signing_key_refuses_encryption_by_name(sim):
    kms = sim.kms
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert error_code(e) == "InvalidKeyUsageException"
    assert "SIGN_VERIFY" in str(e.value)


def test_aws_cli_signs_and_verifies_with_an_ecc_key(sim, tmp_path):
    key = sim.aws("kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")
    key_id = key["KeyMetadata"]["KeyId"]
    assert key["KeyMetadata"]["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    message = tmp_path / "message"
    message.write_bytes(b"signed with the AWS CLI")
    signed = sim.aws("kms", "sign", "--key-id", key_id, "--message", f"fileb://{message}",
                     "--signing-algorithm", "ECDSA_SHA_256")
    signature = base64.b64decode(signed["Signature"])
    public_key(sim.kms, key_id).verify(signature, message.read_bytes(), ec.ECDSA(hashes.SHA256()))
    sig_file = tmp_path / "signature"
    sig_file.write_bytes(signature)
    ok = sim.aws("kms", "verify", "--key-id", key_id, "--message", f"fileb://{message}",
                 "--signature", f"fileb://{sig_file}", "--signing-algorithm", "ECDSA_SHA_256")
    assert ok["SignatureValid"] is True
    sig_file.write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))
    assert sim.aws_error("kms", "verify", "--key-id", key_id, "--message", f"fileb://{message}",
                         "--signature", f"fileb://{sig_file}",
                         "--signing-algorithm", "ECDSA_SHA_256") == "KMSInvalidSignatureException"
