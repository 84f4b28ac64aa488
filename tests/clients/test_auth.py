"""SigV4 at the edges, through the real clients: the AWS CLI and boto3 sign, the simulator
verifies; STS GetCallerIdentity names the signing account; `[auth] mode = "none"` accepts
anything."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import Sim

SECOND_ACCOUNT = """
[[auth.credentials]]
access_key_id = "AKIDALICE0000000000A"
secret_access_key = "alice/secret+key"
account = "444455556666"
user = "alice"
"""

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)


@pytest.fixture
def sim2(tmp_path):
    s = Sim(tmp_path, config=SECOND_ACCOUNT)
    try:
        yield s
    finally:
        s.stop()


def test_cli_sts_get_caller_identity_names_the_default_account(sim):
    out = sim.aws("sts", "get-caller-identity")
    assert out["Account"] == "111122223333"
    assert out["Arn"] == "arn:aws:iam::111122223333:root"
    assert out["UserId"] == "111122223333"


def test_boto3_sts_names_the_account_and_user_of_the_signing_key(sim2):
    sts = sim2.client("sts", key="AKIDALICE0000000000A", secret="alice/secret+key",
                      region="eu-west-1")
    who = sts.get_caller_identity()
    assert who["Account"] == "444455556666"
    assert who["Arn"] == "arn:aws:iam::444455556666:user/alice"
    assert who["UserId"].startswith("AIDA")


def test_boto3_right_secret_works_wrong_secret_is_refused_in_aws_words(sim2):
    sim2.client("kms", key="AKIDALICE0000000000A", secret="alice/secret+key").list_keys()
    wrong = sim2.client("kms", key="AKIDALICE0000000000A", secret="not-alice")
    with pytest.raises(ClientError) as e:
        wrong.list_keys()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["Error"]["Message"] == SIGNATURE_MISMATCH
    with pytest.raises(ClientError) as e:
        sim2.client("cloudhsmv2", key="AKIDALICE0000000000A", secret="x").describe_clusters()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_cli_unknown_key_is_unrecognized_and_sts_says_invalid_client_token(sim):
    env_key = "AWS_ACCESS_KEY_ID=AKIDNOBODY"
    r = sim.shell(f"{env_key} aws kms list-keys")
    assert r.rc != 0 and r.error_code == "UnrecognizedClientException", r.stderr
    assert "The security token included in the request is invalid." in r.stderr
    r = sim.shell(f"{env_key} aws sts get-caller-identity")
    assert r.rc != 0 and r.error_code == "InvalidClientTokenId", r.stderr


def test_mode_none_accepts_any_key(tmp_path):
    s = Sim(tmp_path, config='[auth]\nmode = "none"\n')
    try:
        s.client("kms", key="AKIDNOBODY", secret="whatever").list_keys()
        assert s.client("sts", key="AKIDNOBODY", secret="x").get_caller_identity()[
            "Account"] == "111122223333"
    finally:
        s.stop()


def test_boto3_accounts_and_regions_are_isolated_and_arns_say_so(sim2):
    home = sim2.client("kms")
    key = home.create_key()["KeyMetadata"]
    assert key["Arn"] == f"arn:aws:kms:us-east-1:111122223333:key/{key['KeyId']}"
    eu = sim2.client("kms", region="eu-west-1")
    eu_key = eu.create_key()["KeyMetadata"]
    assert eu_key["Arn"].startswith("arn:aws:kms:eu-west-1:111122223333:key/")
    alice = sim2.client("kms", key="AKIDALICE0000000000A", secret="alice/secret+key")
    for other in (eu, alice):
        with pytest.raises(ClientError) as e:
            other.describe_key(KeyId=key["KeyId"])
        assert e.value.response["Error"]["Code"] == "NotFoundException"
        assert key["KeyId"] not in [k["KeyId"] for k in other.list_keys()["Keys"]]
    assert [k["KeyId"] for k in eu.list_keys()["Keys"]] == [eu_key["KeyId"]]
    # The CLI in another region sees no cluster; in the default one, the seeded cluster.
    r = sim2.shell("AWS_DEFAULT_REGION=eu-west-1 aws cloudhsmv2 describe-clusters")
    assert r.rc == 0 and '"Clusters": []' in r.stdout, r.stdout + r.stderr
    assert sim2.aws("cloudhsmv2", "describe-clusters")["Clusters"][0]["ClusterId"] == \
        sim2.default_cluster


def test_a_presigned_sts_url_from_boto3_answers_with_the_account(sim2):
    import urllib.request

    sts = sim2.client("sts", key="AKIDALICE0000000000A", secret="alice/secret+key")
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read().decode()
    assert "<Account>444455556666</Account>" in body, body
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=61")
    try:
        urllib.request.urlopen(tampered, timeout=30)
        raise AssertionError("a tampered presigned URL was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in e.read().decode()
