"""The simulated CloudHSM control plane (cloudhsmv2) through the AWS CLI and boto3 (awsJson1_1)
and through a hand-made rpc-v2-cbor client (urllib + cbor2)."""

from __future__ import annotations

import datetime
import gzip
import json
import pathlib
import struct
import urllib.error
import urllib.request

import botocore
import botocore.session
import cbor2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import (ACCESS_KEY, SECRET_KEY, error_code, make_ca, new_cluster, random_subnets,
                      sign_csr)

INVALID = "CloudHsmInvalidRequestException"
NOT_FOUND = "CloudHsmResourceNotFoundException"


def test_fresh_data_dir_has_exactly_the_default_active_cluster(sim):
    """scripts/serve's promise: one ACTIVE cluster with two HSMs (in two AZs) whose certificate
    chains to the customerCA.crt written to the data dir."""
    out = sim.aws("cloudhsmv2", "describe-clusters")
    assert [c["ClusterId"] for c in out["Clusters"]] == [sim.default_cluster]
    c = out["Clusters"][0]
    assert c["State"] == "ACTIVE"
    assert len(c["Hsms"]) == 2
    assert all(h["State"] == "ACTIVE" and h["ClusterId"] == c["ClusterId"] for h in c["Hsms"])
    assert len({h["AvailabilityZone"] for h in c["Hsms"]}) == 2
    assert {h["AvailabilityZone"] for h in c["Hsms"]} <= set(c["SubnetMapping"])
    assert "ClusterCsr" not in c["Certificates"]
    anchor = x509.load_pem_x509_certificate(sim.trust_anchor.encode())
    cert = x509.load_pem_x509_certificate(c["Certificates"]["ClusterCertificate"].encode())
    cert.verify_directly_issued_by(anchor)
    assert isinstance(c["CreateTimestamp"], float | int)


def test_cli_cluster_lifecycle(sim, tmp_path):
    subnets = random_subnets()
    created = sim.aws("cloudhsmv2", "create-cluster", "--hsm-type", "hsm2m.medium",
                      "--subnet-ids", *subnets)["Cluster"]
    cid = created["ClusterId"]
    assert cid.startswith("cluster-")
    assert created["State"] == "UNINITIALIZED"
    assert created["Hsms"] == []
    assert sorted(created["SubnetMapping"].values()) == sorted(subnets)
    csr_pem = created["Certificates"]["ClusterCsr"]
    assert "BEGIN CERTIFICATE REQUEST" in csr_pem

    # The CSR as describe-clusters shows it (filter by ID, JSON syntax).
    out = sim.aws("cloudhsmv2", "describe-clusters", "--filters", json.dumps({"clusterIds": [cid]}))
    assert [c["ClusterId"] for c in out["Clusters"]] == [cid]
    assert out["Clusters"][0]["Certificates"]["ClusterCsr"] == csr_pem

    ca = make_ca("customerCA")
    signed = sign_csr(ca, csr_pem)
    (tmp_path / "CustomerHsmCertificate.crt").write_text(signed)
    (tmp_path / "customerCA.crt").write_text(ca.pem)
    init = sim.aws("cloudhsmv2", "initialize-cluster", "--cluster-id", cid,
                   "--signed-cert", f"file://{tmp_path / 'CustomerHsmCertificate.crt'}",
                   "--trust-anchor", f"file://{tmp_path / 'customerCA.crt'}")
    assert init["State"] == "INITIALIZED"

    activated = sim.control("POST", f"/_sim/clusters/{cid}/activate", {"admin_password": "adminPassw0rd"})
    assert activated["state"] == "ACTIVE"

    azs = sorted(created["SubnetMapping"])
    hsm_ids = []
    for az in azs:
        h = sim.aws("cloudhsmv2", "create-hsm", "--cluster-id", cid, "--availability-zone", az)["Hsm"]
        assert h["AvailabilityZone"] == az
        assert h["ClusterId"] == cid
        assert h["SubnetId"] == created["SubnetMapping"][az]
        assert h["State"] == "ACTIVE"
        assert h["HsmId"].startswith("hsm-")
        hsm_ids.append(h["HsmId"])

    # Filters: by ID (shorthand syntax) and by state.
    out = sim.aws("cloudhsmv2", "describe-clusters", "--filters", f"clusterIds={cid}")
    (c,) = out["Clusters"]
    assert c["State"] == "ACTIVE"
    assert sorted(h["HsmId"] for h in c["Hsms"]) == sorted(hsm_ids)
    assert "ClusterCsr" not in c["Certificates"]
    assert x509.load_pem_x509_certificate(c["Certificates"]["ClusterCertificate"].encode()) == \
        x509.load_pem_x509_certificate(signed.encode())
    active = sim.aws("cloudhsmv2", "describe-clusters", "--filters", "states=ACTIVE")
    assert sorted(x["ClusterId"] for x in active["Clusters"]) == sorted([cid, sim.default_cluster])
    uninit = sim.aws("cloudhsmv2", "describe-clusters", "--filters", "states=UNINITIALIZED")
    assert uninit["Clusters"] == []

    # Pagination through the CLI: --max-items/--starting-token, and --page-size.
    first = sim.aws("cloudhsmv2", "describe-clusters", "--max-items", "1")
    assert len(first["Clusters"]) == 1 and first.get("NextToken")
    rest = sim.aws("cloudhsmv2", "describe-clusters", "--max-items", "1",
                   "--starting-token", first["NextToken"])
    assert len(rest["Clusters"]) == 1 and "NextToken" not in rest
    seen = [x["ClusterId"] for x in first["Clusters"] + rest["Clusters"]]
    assert sorted(seen) == sorted([cid, sim.default_cluster])
    paged = sim.aws("cloudhsmv2", "describe-clusters", "--page-size", "1")
    assert sorted(x["ClusterId"] for x in paged["Clusters"]) == sorted(seen)

    # DeleteHsm, then DeleteCluster refused while an HSM is left.
    gone = sim.aws("cloudhsmv2", "delete-hsm", "--cluster-id", cid, "--hsm-id", hsm_ids[0])
    assert gone["HsmId"] == hsm_ids[0]
    assert sim.aws_error("cloudhsmv2", "delete-cluster", "--cluster-id", cid) == INVALID
    (c,) = sim.aws("cloudhsmv2", "describe-clusters", "--filters", f"clusterIds={cid}")["Clusters"]
    assert c["State"] == "ACTIVE"
    assert [h["HsmId"] for h in c["Hsms"]] == [hsm_ids[1]]
    # Unknown HSM.
    assert sim.aws_error("cloudhsmv2", "delete-hsm", "--cluster-id", cid,
                         "--hsm-id", hsm_ids[0]) == NOT_FOUND

    sim.aws("cloudhsmv2", "delete-hsm", "--cluster-id", cid, "--hsm-id", hsm_ids[1])
    deleted = sim.aws("cloudhsmv2", "delete-cluster", "--cluster-id", cid)["Cluster"]
    assert deleted["ClusterId"] == cid
    assert deleted["State"] in ("DELETE_IN_PROGRESS", "DELETED")
    assert deleted["Hsms"] == []
    out = sim.aws("cloudhsmv2", "describe-clusters", "--filters", "states=ACTIVE")
    assert [x["ClusterId"] for x in out["Clusters"]] == [sim.default_cluster]


def test_boto3_cluster_lifecycle_and_pagination(sim):
    hsm = sim.hsm
    ids = []
    for _ in range(2):
        c = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=random_subnets())["Cluster"]
        assert c["State"] == "UNINITIALIZED"
        assert isinstance(c["CreateTimestamp"], datetime.datetime)
        ids.append(c["ClusterId"])
    cid = ids[0]
    csr = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]["Certificates"]["ClusterCsr"]
    ca = make_ca("customerCA")
    out = hsm.initialize_cluster(ClusterId=cid, SignedCert=sign_csr(ca, csr), TrustAnchor=ca.pem)
    assert out["State"] == "INITIALIZED"
    # A second InitializeCluster is refused: the cluster is no longer UNINITIALIZED.
    with pytest.raises(hsm.exceptions.CloudHsmInvalidRequestException):
        hsm.initialize_cluster(ClusterId=cid, SignedCert=sign_csr(ca, csr), TrustAnchor=ca.pem)
    sim.control("POST", f"/_sim/clusters/{cid}/activate", {"admin_password": "adminPassw0rd"})
    c = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]
    assert c["State"] == "ACTIVE"
    hsm_ids = [hsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]["HsmId"]
               for az in sorted(c["SubnetMapping"])]
    c = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]
    assert len({h["AvailabilityZone"] for h in c["Hsms"]}) == 2
    # An AZ the cluster has no subnet in is refused.
    with pytest.raises(ClientError) as e:
        hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-west-2a")
    assert error_code(e) == INVALID

    # Filters.
    states = {x["ClusterId"]: x["State"] for x in hsm.describe_clusters()["Clusters"]}
    assert states == {sim.default_cluster: "ACTIVE", cid: "ACTIVE", ids[1]: "UNINITIALIZED"}
    both = hsm.describe_clusters(Filters={"clusterIds": ids})["Clusters"]
    assert sorted(x["ClusterId"] for x in both) == sorted(ids)
    un = hsm.describe_clusters(Filters={"states": ["UNINITIALIZED"]})["Clusters"]
    assert [x["ClusterId"] for x in un] == [ids[1]]
    mixed = hsm.describe_clusters(Filters={"clusterIds": ids, "states": ["ACTIVE"]})["Clusters"]
    assert [x["ClusterId"] for x in mixed] == [cid]

    # Pagination: MaxResults/NextToken by hand, then through the paginator.
    seen, token = [], None
    while True:
        kw = {"MaxResults": 1, **({"NextToken": token} if token else {})}
        page = hsm.describe_clusters(**kw)
        assert len(page["Clusters"]) <= 1
        seen += [x["ClusterId"] for x in page["Clusters"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(states)
    assert len(seen) == len(set(seen))
    pages = list(hsm.get_paginator("describe_clusters").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Clusters"]) for p in pages] == [2, 1]
    assert "NextToken" in pages[0] and "NextToken" not in pages[-1]
    assert sorted(x["ClusterId"] for p in pages for x in p["Clusters"]) == sorted(states)
    limited = hsm.get_paginator("describe_clusters").paginate(
        PaginationConfig={"MaxItems": 2, "PageSize": 1}).build_full_result()
    assert len(limited["Clusters"]) == 2 and limited.get("NextToken")
    with pytest.raises(ClientError) as e:
        hsm.describe_clusters(NextToken="not-a-token")
    assert error_code(e) == INVALID

    # Delete: refused while HSMs exist, then allowed.
    hsm.delete_hsm(ClusterId=cid, HsmId=hsm_ids[0])
    with pytest.raises(hsm.exceptions.CloudHsmInvalidRequestException):
        hsm.delete_cluster(ClusterId=cid)
    assert hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]["State"] == "ACTIVE"
    hsm.delete_hsm(ClusterId=cid, HsmId=hsm_ids[1])
    assert hsm.delete_cluster(ClusterId=cid)["Cluster"]["State"] in ("DELETE_IN_PROGRESS", "DELETED")
    hsm.delete_cluster(ClusterId=ids[1])  # no HSMs: deletable at once
    left = hsm.describe_clusters(Filters={"states": ["ACTIVE", "UNINITIALIZED"]})["Clusters"]
    assert [x["ClusterId"] for x in left] == [sim.default_cluster]

    with pytest.raises(hsm.exceptions.CloudHsmResourceNotFoundException):
        hsm.delete_cluster(ClusterId="cluster-234567abcdefg")


def test_bad_certificates_are_refused_and_change_nothing(sim):
    hsm = sim.hsm
    c = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=random_subnets())["Cluster"]
    cid = c["ClusterId"]
    csr = c["Certificates"]["ClusterCsr"]
    ca = make_ca("customerCA")
    good = sign_csr(ca, csr)

    other_same_name = make_ca("customerCA")  # same subject, different key
    other = make_ca("someone else's CA")
    intermediate = make_ca("intermediate CA", issuer=ca)
    not_a_ca = make_ca("customerCA", is_ca=False)
    garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    cases = {
        "garbage signed cert": (garbage, ca.pem),
        "not PEM at all": ("hello, cluster", ca.pem),
        "garbage trust anchor": (good, garbage),
        "anchor not self-signed (an intermediate)": (sign_csr(intermediate, csr), intermediate.pem),
        "anchor is not a CA": (sign_csr(not_a_ca, csr), not_a_ca.pem),
        "signed by another CA": (sign_csr(other, csr), ca.pem),
        "signed by another CA with the anchor's name": (sign_csr(other_same_name, csr), ca.pem),
        "certificate for another key than the CSR's": (
            sign_csr(ca, csr, public_key=ec.generate_private_key(ec.SECP256R1()).public_key()),
            ca.pem,
        ),
        "anchor is the signed certificate itself": (good, good),
    }
    for what, (signed, anchor) in cases.items():
        try:
            hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=anchor)
        except ClientError as e:
            assert isinstance(e, hsm.exceptions.CloudHsmInvalidRequestException), (what, e)
            assert e.response["Error"]["Code"] == INVALID, what
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, what
        else:
            pytest.fail(f"InitializeCluster accepted a bad certificate: {what}")
        now = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]
        assert now["State"] == "UNINITIALIZED", what
        assert now["Certificates"].get("ClusterCsr") == csr, what
        assert "ClusterCertificate" not in now["Certificates"], what

    # The AWS CLI names the exception too.
    bad = sim.root / "bad.crt"
    bad.write_text(sign_csr(other, csr))
    anchor = sim.root / "anchor.crt"
    anchor.write_text(ca.pem)
    assert sim.aws_error("cloudhsmv2", "initialize-cluster", "--cluster-id", cid,
                         "--signed-cert", f"file://{bad}", "--trust-anchor", f"file://{anchor}") == INVALID
    # The token was not created by any of the failed attempts.
    assert sim.control("GET", f"/_sim/clusters/{cid}")["has_token"] is False

    # Unknown cluster.
    with pytest.raises(hsm.exceptions.CloudHsmResourceNotFoundException):
        hsm.initialize_cluster(ClusterId="cluster-234567abcdefg", SignedCert=good, TrustAnchor=ca.pem)

    # And the right pair still works afterwards.
    assert hsm.initialize_cluster(ClusterId=cid, SignedCert=good, TrustAnchor=ca.pem)["State"] == "INITIALIZED"


def test_backups_and_tags(sim):
    cl = new_cluster(sim, hsms=2)
    hsm = sim.hsm
    # Adding an HSM to an initialized cluster backs it up.
    backups = hsm.describe_backups(Filters={"clusterIds": [cl.id]})["Backups"]
    assert len(backups) >= 1
    for b in backups:
        assert b["ClusterId"] == cl.id
        assert b["BackupState"] == "READY"
        assert b["BackupId"].startswith("backup-")
        assert b["BackupArn"].endswith(":backup/" + b["BackupId"])
        assert b["BackupArn"].startswith("arn:aws:cloudhsm:us-east-1:")
    cli = sim.aws("cloudhsmv2", "describe-backups", "--filters", f"clusterIds={cl.id}")
    assert sorted(b["BackupId"] for b in cli["Backups"]) == sorted(b["BackupId"] for b in backups)
    all_backups = hsm.describe_backups()["Backups"]
    assert {b["ClusterId"] for b in all_backups} == {cl.id, sim.default_cluster}
    asc = hsm.describe_backups(SortAscending=True)["Backups"]
    stamps = [b["CreateTimestamp"] for b in asc]
    assert stamps == sorted(stamps)
    assert len(asc) == len(all_backups)

    # DeleteBackup → PENDING_DELETION; RestoreBackup → READY.
    bid = backups[0]["BackupId"]
    assert hsm.delete_backup(BackupId=bid)["Backup"]["BackupState"] == "PENDING_DELETION"
    pending = hsm.describe_backups(Filters={"states": ["PENDING_DELETION"]})["Backups"]
    assert [b["BackupId"] for b in pending] == [bid]
    assert hsm.restore_backup(BackupId=bid)["Backup"]["BackupState"] == "READY"
    with pytest.raises(hsm.exceptions.CloudHsmInvalidRequestException):
        hsm.restore_backup(BackupId=bid)

    # Tags on a cluster with the CLI.
    sim.aws("cloudhsmv2", "tag-resource", "--resource-id", cl.id,
            "--tag-list", "Key=env,Value=test", "Key=team,Value=kms")
    tags = sim.aws("cloudhsmv2", "list-tags", "--resource-id", cl.id)["TagList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "kms")]
    sim.aws("cloudhsmv2", "untag-resource", "--resource-id", cl.id, "--tag-key-list", "env")
    tags = sim.aws("cloudhsmv2", "list-tags", "--resource-id", cl.id)["TagList"]
    assert tags == [{"Key": "team", "Value": "kms"}]
    c = hsm.describe_clusters(Filters={"clusterIds": [cl.id]})["Clusters"][0]
    assert c["TagList"] == [{"Key": "team", "Value": "kms"}]
    # Same key replaces the value; tags on a backup; unknown resources.
    hsm.tag_resource(ResourceId=cl.id, TagList=[{"Key": "team", "Value": "crypto"}])
    assert hsm.list_tags(ResourceId=cl.id)["TagList"] == [{"Key": "team", "Value": "crypto"}]
    hsm.tag_resource(ResourceId=bid, TagList=[{"Key": "purpose", "Value": "audit"}])
    assert hsm.list_tags(ResourceId=bid)["TagList"] == [{"Key": "purpose", "Value": "audit"}]
    assert sim.aws_error("cloudhsmv2", "list-tags", "--resource-id", "cluster-234567abcdefg") == NOT_FOUND
    with pytest.raises(hsm.exceptions.CloudHsmResourceNotFoundException):
        hsm.tag_resource(ResourceId="backup-234567abcdefg", TagList=[{"Key": "a", "Value": "b"}])


# -- rpc-v2-cbor ---------------------------------------------------------------------------


class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __repr__(self):
        return f"Tagged({self.tag}, {self.value!r})"


def raw_cbor(data: bytes):
    """A minimal CBOR reader that keeps semantic tags visible (cbor2 turns tag 1 into a
    datetime, which hides whether the server sent tag 1 or tag 0)."""
    pos = 0

    def arg(info):
        nonlocal pos
        if info < 24:
            return info
        size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        v = int.from_bytes(data[pos:pos + size], "big")
        pos += size
        return v

    def item():
        nonlocal pos
        ib = data[pos]
        pos += 1
        major, info = ib >> 5, ib & 31
        if major == 7:
            if info == 25:
                v = struct.unpack(">e", data[pos:pos + 2])[0]
                pos += 2
                return v
            if info == 26:
                v = struct.unpack(">f", data[pos:pos + 4])[0]
                pos += 4
                return v
            if info == 27:
                v = struct.unpack(">d", data[pos:pos + 8])[0]
                pos += 8
                return v
            return {20: False, 21: True, 22: None, 23: None}.get(info, ("simple", info))
        if info == 31:  # indefinite length
            if major in (2, 3):
                parts = []
                while data[pos] != 0xFF:
                    parts.append(item())
                pos += 1
                return (b"" if major == 2 else "").join(parts)
            if major == 4:
                out = []
                while data[pos] != 0xFF:
                    out.append(item())
                pos += 1
                return out
            if major == 5:
                out = {}
                while data[pos] != 0xFF:
                    k = item()
                    out[k] = item()
                pos += 1
                return out
            raise ValueError(f"bad indefinite item {ib:#x}")
        n = arg(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major in (2, 3):
            s = data[pos:pos + n]
            pos += n
            return s if major == 2 else s.decode()
        if major == 4:
            return [item() for _ in range(n)]
        if major == 5:
            out = {}
            for _ in range(n):
                k = item()
                out[k] = item()
            return out
        return Tagged(n, item())

    v = item()
    assert pos == len(data), "trailing bytes after the CBOR item"
    return v


def cbor_call(sim, op: str, body: dict, headers: dict | None = None):
    h = {
        "smithy-protocol": "rpc-v2-cbor",
        "Content-Type": "application/cbor",
        "Accept": "application/cbor",
    }
    if headers is not None:
        h = headers
    url = f"{sim.endpoint}/service/BaldrApiService/operation/{op}"
    data = cbor2.dumps(body)
    req = urllib.request.Request(
        url, data=data, method="POST", headers=sim.signed_headers("POST", url, data, h)
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_rpc_v2_cbor_describe_and_create(sim):
    status, headers, raw = cbor_call(sim, "DescribeClusters", {})
    assert status == 200
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["content-type"] == "application/cbor"
    assert lower.get("smithy-protocol") == "rpc-v2-cbor"
    out = cbor2.loads(raw)
    (c,) = out["Clusters"]
    assert c["ClusterId"] == sim.default_cluster
    assert c["State"] == "ACTIVE"
    assert len(c["Hsms"]) == 2
    # Timestamps are epoch-seconds under semantic tag 1.
    ts = raw_cbor(raw)["Clusters"][0]["CreateTimestamp"]
    assert isinstance(ts, Tagged) and ts.tag == 1, ts
    assert isinstance(ts.value, int | float)
    assert isinstance(c["CreateTimestamp"], datetime.datetime)
    json_ts = sim.hsm.describe_clusters()["Clusters"][0]["CreateTimestamp"]
    assert abs(c["CreateTimestamp"].timestamp() - json_ts.timestamp()) < 0.01

    # CreateCluster over CBOR; the cluster is the same one the JSON door sees.
    subnets = random_subnets()
    status, _, raw = cbor_call(sim, "CreateCluster", {"HsmType": "hsm2m.medium", "SubnetIds": subnets})
    assert status == 200, cbor2.loads(raw)
    created = cbor2.loads(raw)["Cluster"]
    cid = created["ClusterId"]
    assert created["State"] == "UNINITIALIZED"
    assert sorted(created["SubnetMapping"].values()) == sorted(subnets)
    assert "BEGIN CERTIFICATE REQUEST" in created["Certificates"]["ClusterCsr"]
    status, _, raw = cbor_call(sim, "DescribeClusters", {"Filters": {"clusterIds": [cid]}})
    assert status == 200
    (d,) = cbor2.loads(raw)["Clusters"]
    assert d["ClusterId"] == cid and d["State"] == "UNINITIALIZED"
    assert raw_cbor(raw)["Clusters"][0]["CreateTimestamp"].tag == 1
    via_json = sim.hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"]
    assert [x["ClusterId"] for x in via_json] == [cid]

    # InitializeCluster over CBOR with a correctly signed CSR.
    ca = make_ca("customerCA")
    status, _, raw = cbor_call(sim, "InitializeCluster", {
        "ClusterId": cid,
        "SignedCert": sign_csr(ca, created["Certificates"]["ClusterCsr"]),
        "TrustAnchor": ca.pem,
    })
    assert status == 200, cbor2.loads(raw)
    assert cbor2.loads(raw)["State"] == "INITIALIZED"

    # Paginated over CBOR too.
    status, _, raw = cbor_call(sim, "DescribeClusters", {"MaxResults": 1})
    page = cbor2.loads(raw)
    assert len(page["Clusters"]) == 1 and page["NextToken"]
    status, _, raw = cbor_call(sim, "DescribeClusters", {"MaxResults": 1, "NextToken": page["NextToken"]})
    page2 = cbor2.loads(raw)
    assert {page["Clusters"][0]["ClusterId"], page2["Clusters"][0]["ClusterId"]} == {cid, sim.default_cluster}
    assert "NextToken" not in page2


def test_rpc_v2_cbor_errors(sim):
    ca = make_ca("customerCA")
    status, headers, raw = cbor_call(sim, "InitializeCluster", {
        "ClusterId": "cluster-234567abcdefg",
        "SignedCert": ca.pem,
        "TrustAnchor": ca.pem,
    })
    assert 400 <= status < 500
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["content-type"] == "application/cbor"
    assert lower.get("smithy-protocol") == "rpc-v2-cbor"
    err = cbor2.loads(raw)
    assert err["__type"].endswith(("CloudHsmResourceNotFoundException", "CloudHsmInvalidRequestException")), err
    assert err.get("message") or err.get("Message")

    # A bad certificate over CBOR: invalid request, and the cluster stays UNINITIALIZED.
    _, _, raw = cbor_call(sim, "CreateCluster", {"HsmType": "hsm2m.medium", "SubnetIds": random_subnets()})
    cid = cbor2.loads(raw)["Cluster"]["ClusterId"]
    status, _, raw = cbor_call(sim, "InitializeCluster", {
        "ClusterId": cid, "SignedCert": "garbage", "TrustAnchor": ca.pem})
    assert status == 400
    assert cbor2.loads(raw)["__type"].endswith("CloudHsmInvalidRequestException")
    _, _, raw = cbor_call(sim, "DescribeClusters", {"Filters": {"clusterIds": [cid]}})
    assert cbor2.loads(raw)["Clusters"][0]["State"] == "UNINITIALIZED"

    # A request without the smithy-protocol header is not an rpc-v2-cbor request.
    status, _, raw = cbor_call(sim, "DescribeClusters", {}, headers={"Content-Type": "application/cbor"})
    assert 400 <= status < 500
    assert "__type" in cbor2.loads(raw)

    # DeleteCluster of a cluster with HSMs is refused over CBOR as over JSON.
    status, _, raw = cbor_call(sim, "DeleteCluster", {"ClusterId": sim.default_cluster})
    assert status == 400
    assert cbor2.loads(raw)["__type"].endswith("CloudHsmInvalidRequestException")


def botocore_cbor_client(sim, tmp_path):
    """botocore's own rpc-v2-cbor client for cloudhsmv2: botocore ships the serializer and
    parser but prefers the model's `json` protocol, so load a copy of its model that lists
    only smithy-rpc-v2-cbor."""
    src = pathlib.Path(botocore.__file__).parent / "data" / "cloudhsmv2" / "2017-04-28"
    model_file = src / "service-2.json.gz"
    model = json.loads(gzip.decompress(model_file.read_bytes())) if model_file.exists() \
        else json.loads((src / "service-2.json").read_text())
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    root = tmp_path / "botocore-data"
    d = root / "cloudhsmv2" / "2017-04-28"
    d.mkdir(parents=True)
    (d / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(root))
    client = session.create_client(
        "cloudhsmv2", region_name="us-east-1", endpoint_url=sim.endpoint,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


def test_botocore_rpc_v2_cbor_client_end_to_end(sim, tmp_path):
    hsm = botocore_cbor_client(sim, tmp_path)
    sent = []
    hsm.meta.events.register("before-send", lambda request, **_: sent.append(request))

    (c,) = hsm.describe_clusters()["Clusters"]
    assert c["ClusterId"] == sim.default_cluster and c["State"] == "ACTIVE"
    assert isinstance(c["CreateTimestamp"], datetime.datetime)
    assert sent[-1].url.endswith("/service/BaldrApiService/operation/DescribeClusters")
    assert sent[-1].headers["smithy-protocol"] in (b"rpc-v2-cbor", "rpc-v2-cbor")
    assert "X-Amz-Target" not in sent[-1].headers

    created = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=random_subnets(),
                                 TagList=[{"Key": "proto", "Value": "cbor"}])["Cluster"]
    cid = created["ClusterId"]
    assert created["State"] == "UNINITIALIZED"
    ca = make_ca("customerCA")
    with pytest.raises(hsm.exceptions.CloudHsmInvalidRequestException):
        hsm.initialize_cluster(ClusterId=cid, SignedCert=sign_csr(make_ca("customerCA"), created["Certificates"]["ClusterCsr"]),
                               TrustAnchor=ca.pem)
    with pytest.raises(hsm.exceptions.CloudHsmResourceNotFoundException) as e:
        hsm.initialize_cluster(ClusterId="cluster-234567abcdefg", SignedCert=ca.pem, TrustAnchor=ca.pem)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    out = hsm.initialize_cluster(ClusterId=cid, SignedCert=sign_csr(ca, created["Certificates"]["ClusterCsr"]),
                                 TrustAnchor=ca.pem)
    assert out["State"] == "INITIALIZED"
    sim.control("POST", f"/_sim/clusters/{cid}/activate", {"admin_password": "adminPassw0rd"})
    hsm_ids = [hsm.create_hsm(ClusterId=cid, AvailabilityZone=az)["Hsm"]["HsmId"]
               for az in sorted(created["SubnetMapping"])]
    (c,) = hsm.describe_clusters(Filters={"clusterIds": [cid], "states": ["ACTIVE"]})["Clusters"]
    assert sorted(h["HsmId"] for h in c["Hsms"]) == sorted(hsm_ids)
    assert c["TagList"] == [{"Key": "proto", "Value": "cbor"}]
    pages = list(hsm.get_paginator("describe_clusters").paginate(PaginationConfig={"PageSize": 1}))
    assert sorted(x["ClusterId"] for p in pages for x in p["Clusters"]) == sorted([cid, sim.default_cluster])
    assert len(pages) == 2
    backups = hsm.describe_backups(Filters={"clusterIds": [cid]})["Backups"]
    assert backups and all(isinstance(b["CreateTimestamp"], datetime.datetime) for b in backups)
    hsm.delete_hsm(ClusterId=cid, HsmId=hsm_ids[0])
    with pytest.raises(hsm.exceptions.CloudHsmInvalidRequestException):
        hsm.delete_cluster(ClusterId=cid)
    hsm.delete_hsm(ClusterId=cid, HsmId=hsm_ids[1])
    assert hsm.delete_cluster(ClusterId=cid)["Cluster"]["State"] in ("DELETE_IN_PROGRESS", "DELETED")
    # The JSON door agrees.
    assert sim.hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]["State"] in (
        "DELETE_IN_PROGRESS", "DELETED")


def test_cluster_changes_under_a_key_store(sim):
    """What cloudhsmv2 does to a cluster shows through KMS: no HSMs → crypto fails but the
    store stays CONNECTED; a deleted cluster → connect FAILED with CLUSTER_NOT_FOUND; the store
    can still be deleted (DeleteCustomKeyStore does not need the cluster)."""
    kms, hsm = sim.kms, sim.hsm
    cl = new_cluster(sim)
    store = sim.create_store("on-a-doomed-cluster", cluster=cl.id, anchor=cl.anchor,
                             password=cl.kmsuser_password)
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    sim.wait_state(store, "CONNECTED")
    key = sim.cloudhsm_key(store)
    assert key["CloudHsmClusterId"] == cl.id
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]

    hsms = hsm.describe_clusters(Filters={"clusterIds": [cl.id]})["Clusters"][0]["Hsms"]
    hsm.delete_hsm(ClusterId=cl.id, HsmId=hsms[0]["HsmId"])
    # One HSM left: enough for crypto, not for creating keys.
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    with pytest.raises(kms.exceptions.CloudHsmClusterInvalidConfigurationException):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)
    hsm.delete_hsm(ClusterId=cl.id, HsmId=hsms[1]["HsmId"])
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.decrypt(CiphertextBlob=blob)
    assert sim.store_entry(store)["ConnectionState"] == "CONNECTED"
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"

    hsm.delete_cluster(ClusterId=cl.id)
    sim.disconnect(store)
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert sim.wait_state(store, "FAILED")["ConnectionErrorCode"] == "CLUSTER_NOT_FOUND"
    sim.disconnect(store)
    with pytest.raises(kms.exceptions.CustomKeyStoreHasCMKsException):
        kms.delete_custom_key_store(CustomKeyStoreId=store)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    sim.advance_days(7.5)
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=key["KeyId"])
    kms.delete_custom_key_store(CustomKeyStoreId=store)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    # The material could not be removed from the deleted cluster: an orphan is recorded.
    orphans = sim.control("GET", "/_sim/orphans")["orphans"]
    assert [(o["key_arn"], o["cluster_id"]) for o in orphans] == [(key["Arn"], cl.id)]
