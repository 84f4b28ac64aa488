"""Shared fixtures for the client tests: a real `cks-sim serve` per test, driven by the AWS CLI
(v1, from this venv), boto3, and plain urllib for the simulator's control door.

Every test gets its own server on 127.0.0.1:0 with a fresh data directory (a start takes well
under a second), so tests never see each other's clusters, stores or keys.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
AWS_CLI = str(VENV_BIN / "aws")
REGION = "us-east-1"
# The credential pair the simulator maps to its default account (`[auth]`).
ACCESS_KEY, SECRET_KEY = "test", "test"

# Keep boto3 in this process away from any real AWS configuration too.
for _var in [v for v in os.environ if v.startswith("AWS_")]:
    del os.environ[_var]
os.environ.update(
    {
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)

ERROR_RE = re.compile(r"An error occurred \((\w+)\)")


def sim_bin() -> str:
    """The simulator binary under test: $CKS_SIM_BIN (scripts/test sets it), else the debug
    build of this checkout. A missing binary fails the tests with the reason."""
    b = os.environ.get("CKS_SIM_BIN") or str(REPO / "target" / "debug" / "cks-sim")
    if not os.access(b, os.X_OK):
        pytest.fail(f"cks-sim binary not found at {b}: run `cargo build --bin cks-sim` or set CKS_SIM_BIN")
    return b


def poll(what: str, fn, timeout: float = 20.0, interval: float = 0.02):
    """Call `fn` until it returns something truthy; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ControlError(Exception):
    def __init__(self, status: int, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class CliResult:
    args: list
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    @property
    def error_code(self):
        m = ERROR_RE.search(self.stderr)
        return m.group(1) if m else None


class Sim:
    """One running `cks-sim serve` with its own data directory."""

    def __init__(
        self,
        root: pathlib.Path,
        config: str | None = None,
        extra_args: tuple = (),
        env: dict | None = None,
    ):
        """Start `cks-sim serve` in `root`; `config` is written as its configuration file,
        `extra_args` go after the usual flags, `env` replaces this process's environment (e.g. a
        module's own configuration variable)."""
        self.root = root
        self.data_dir = root / "data"
        self.port_file = root / "port"
        self.log_path = root / "server.log"
        self.cli_outputs: list[str] = []
        self.bin = sim_bin()
        env = dict(os.environ if env is None else env, CKS_SIM_LOG="warn")
        self._log = open(self.log_path, "wb")
        extra = []
        if config is not None:
            (root / "config.toml").write_text(config)
            extra = ["--config", str(root / "config.toml")]
        self.proc = subprocess.Popen(
            [
                self.bin,
                "serve",
                *extra,
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(self.port_file),
                "--data-dir",
                str(self.data_dir),
                "--connect-delay-ms",
                "0",
                *map(str, extra_args),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            addr = poll("the server's port file", self._port, timeout=60)
            self.addr = addr
            self.endpoint = f"http://{addr}"
            self.port = int(addr.rsplit(":", 1)[1])
            poll("GET /_sim/health", self._healthy, timeout=30)
        except BaseException:
            self.stop()
            raise

    # -- process -------------------------------------------------------------------------

    def _port(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"cks-sim serve exited early ({self.proc.returncode}):\n{self.log()}")
        try:
            text = self.port_file.read_text().strip()
        except FileNotFoundError:
            return None
        return text or None

    def _healthy(self):
        try:
            return self.control("GET", "/_sim/health").get("status") == "ok"
        except (OSError, ControlError):
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    # -- data dir ------------------------------------------------------------------------

    def read(self, name: str) -> str:
        return (self.data_dir / name).read_text()

    @property
    def default_cluster(self) -> str:
        return self.read("default-cluster-id").strip()

    @property
    def kmsuser_password(self) -> str:
        return self.read("kmsuser-password").strip()

    @property
    def admin_password(self) -> str:
        return self.read("admin-password").strip()

    @property
    def trust_anchor_path(self) -> pathlib.Path:
        return self.data_dir / "customerCA.crt"

    @property
    def trust_anchor(self) -> str:
        return self.read("customerCA.crt")

    # -- control door (urllib) ---------------------------------------------------------

    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ControlError(e.code, parsed) from None
        return json.loads(raw) if raw.strip() else None

    def advance_days(self, days: float):
        return self.control("POST", "/_sim/clock/advance", {"days": days})

    def set_fault(self, cluster: str, fault: str, on: bool = True, target: str | None = None):
        body = {"fault": fault, "on": on}
        if target is not None:
            body["target"] = target
        return self.control("POST", f"/_sim/clusters/{cluster}/faults", body)

    def token_objects(self, cluster: str):
        return self.control("GET", f"/_sim/clusters/{cluster}/token")["objects"]

    # -- AWS CLI ---------------------------------------------------------------------------

    def cli_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_RETRY_MODE": "standard",
                "AWS_PAGER": "",
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def _record(self, r: CliResult) -> CliResult:
        self.cli_outputs.append(r.stdout)
        self.cli_outputs.append(r.stderr)
        return r

    def aws_run(self, *args) -> CliResult:
        """Run `aws <args> --output json`; no assertion on the outcome."""
        argv = [AWS_CLI, *map(str, args), "--output", "json"]
        p = subprocess.run(argv, capture_output=True, text=True, env=self.cli_env(), timeout=120)
        return self._record(CliResult(argv, p.returncode, p.stdout, p.stderr))

    def aws(self, *args):
        """Run the AWS CLI, require success and return the parsed JSON output (or None)."""
        r = self.aws_run(*args)
        assert r.rc == 0, f"aws {' '.join(map(str, args))} failed ({r.rc}): {r.stderr}"
        return r.json

    def aws_error(self, *args) -> str:
        """Run the AWS CLI, require a failure and return the exception name it printed."""
        r = self.aws_run(*args)
        assert r.rc != 0, f"aws {' '.join(map(str, args))} unexpectedly succeeded: {r.stdout}"
        assert r.error_code, f"no (ExceptionName) in stderr: {r.stderr}"
        return r.error_code

    def shell(self, script: str) -> CliResult:
        """Run a bash script with the CLI environment (`aws` on PATH)."""
        p = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=self.cli_env(), timeout=120
        )
        return self._record(CliResult(["bash", "-c", script], p.returncode, p.stdout, p.stderr))

    def sim_cli(self, *args) -> subprocess.CompletedProcess:
        """Run the `cks-sim` client CLI against this server."""
        return subprocess.run(
            [self.bin, *map(str, args), "--endpoint", self.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
        )

    # -- boto3 -----------------------------------------------------------------------------

    def client(self, service: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY,
               region: str = REGION, max_attempts: int = 1):
        c = boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": max_attempts, "mode": "standard"}),
        )
        if service != "sts":
            c.meta.events.register("before-parse", check_awsjson_wire)
        return c

    def signed_headers(self, method: str, url: str, body: bytes, headers: dict,
                       service: str = "cloudhsm") -> dict:
        """`headers` plus SigV4's, signed with the default pair as an SDK would (for
        hand-made requests)."""
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(req)
        return dict(req.headers.items())

    @property
    def kms(self):
        if not hasattr(self, "_kms"):
            self._kms = self.client("kms")
        return self._kms

    @property
    def hsm(self):
        if not hasattr(self, "_hsm"):
            self._hsm = self.client("cloudhsmv2")
        return self._hsm

    # -- KMS helpers -----------------------------------------------------------------------

    def store_entry(self, store_id: str) -> dict:
        return self.kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]

    def wait_state(self, store_id: str, state: str, timeout: float = 20.0) -> dict:
        seen = {}

        def check():
            e = self.store_entry(store_id)
            seen["last"] = e
            return e if e["ConnectionState"] == state else None

        try:
            return poll(f"store {store_id} to be {state}", check, timeout=timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen {seen.get('last')}") from None

    def create_store(self, name: str, cluster: str | None = None, anchor: str | None = None,
                     password: str | None = None) -> str:
        return self.kms.create_custom_key_store(
            CustomKeyStoreName=name,
            CloudHsmClusterId=cluster or self.default_cluster,
            TrustAnchorCertificate=anchor or self.trust_anchor,
            KeyStorePassword=password or self.kmsuser_password,
        )["CustomKeyStoreId"]

    def connected_store(self, name: str = "ExampleKeyStore") -> str:
        sid = self.create_store(name)
        self.kms.connect_custom_key_store(CustomKeyStoreId=sid)
        self.wait_state(sid, "CONNECTED")
        return sid

    def disconnect(self, store_id: str):
        self.kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        self.wait_state(store_id, "DISCONNECTED")

    def cloudhsm_key(self, store_id: str, **kw) -> dict:
        return self.kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, **kw)["KeyMetadata"]


def _nulls(v, path="$"):
    if v is None:
        yield path
    elif isinstance(v, dict):
        for k, x in v.items():
            yield from _nulls(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _nulls(x, f"{path}[{i}]")


def check_awsjson_wire(operation_model, response_dict, **_):
    """Every awsJson1_1 answer boto3 sees: the right content type, a request ID, a JSON object
    body without `null` members (absent members are omitted), errors carrying `__type` and a
    message (but for InvalidCiphertextException, which AWS sends without one)."""
    op = operation_model.name
    headers = {k.lower(): v for k, v in response_dict["headers"].items()}
    status = response_dict["status_code"]
    assert headers.get("content-type") == "application/x-amz-json-1.1", (op, status, headers)
    assert headers.get("x-amzn-requestid"), (op, headers)
    body = json.loads(response_dict["body"] or b"{}")
    assert isinstance(body, dict), (op, body)
    nulls = list(_nulls(body))
    assert not nulls, f"{op} answered null members {nulls}: {body}"
    if status >= 300:
        assert body.get("__type"), (op, status, body)
        # AWS sends these with no message at all (recorded responses); every other error has one.
        bare = ("InvalidCiphertextException", "KMSInvalidSignatureException", "KMSInvalidMacException")
        if body["__type"] not in bare:
            assert body.get("message") or body.get("Message"), (op, status, body)


# -- certificates (the customer's issuing CA) ---------------------------------------------


@dataclass
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(
        now + datetime.timedelta(days=3650)
    )


def make_ca(common_name: str = "customerCA", issuer: CA | None = None, is_ca: bool = True) -> CA:
    """A CA certificate: self-signed root (default) or, with `issuer`, an intermediate; with
    `is_ca=False` a self-signed certificate whose basicConstraints say it is no CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    b = x509.CertificateBuilder().subject_name(subject)
    b = b.issuer_name(issuer.cert.subject if issuer else subject)
    b = b.public_key(key.public_key()).serial_number(x509.random_serial_number())
    b = _validity(b).add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False,
        ),
        critical=True,
    )
    cert = b.sign(issuer.key if issuer else key, hashes.SHA256())
    return CA(key, cert)


def sign_csr(ca: CA, csr_pem: str, public_key=None) -> str:
    """Issue the cluster certificate for `csr_pem` (optionally for another `public_key`)."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    b = x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.cert.subject)
    b = b.public_key(public_key or csr.public_key()).serial_number(x509.random_serial_number())
    b = _validity(b).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    return b.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def random_subnets(n: int = 2) -> list[str]:
    return [f"subnet-{secrets.token_hex(8)}" for _ in range(n)]


@dataclass
class NewCluster:
    id: str
    ca: CA
    kmsuser_password: str
    admin_password: str
    azs: list

    @property
    def anchor(self) -> str:
        return self.ca.pem


def new_cluster(sim: Sim, hsms: int = 2, kmsuser: bool = True) -> NewCluster:
    """A cluster made the customer's way with boto3 `cloudhsmv2` and the control door:
    CreateCluster → sign the CSR → InitializeCluster → activate → HSMs → kmsuser."""
    hsm = sim.hsm
    c = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=random_subnets())["Cluster"]
    cid = c["ClusterId"]
    ca = make_ca(f"customerCA {cid}")
    hsm.initialize_cluster(
        ClusterId=cid, SignedCert=sign_csr(ca, c["Certificates"]["ClusterCsr"]), TrustAnchor=ca.pem
    )
    admin_password = "adminPassw0rd"
    sim.control("POST", f"/_sim/clusters/{cid}/activate", {"admin_password": admin_password})
    azs = sorted(c["SubnetMapping"])
    for i in range(hsms):
        hsm.create_hsm(ClusterId=cid, AvailabilityZone=azs[i % len(azs)])
    kmsuser_password = "kmsuserPassw0rd"
    if kmsuser:
        sim.control(
            "POST",
            f"/_sim/clusters/{cid}/users",
            {"username": "kmsuser", "role": "crypto-user", "password": kmsuser_password},
        )
    return NewCluster(cid, ca, kmsuser_password, admin_password, azs)


def error_code(excinfo) -> str:
    """The AWS error code of a botocore ClientError captured by pytest.raises."""
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path)
    try:
        yield s
    finally:
        s.stop()
