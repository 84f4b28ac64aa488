//! Phase 2's key specs, run last on the restarted server: Sign over HTTP with an RSA_2048
//! and an ECC_NIST_P256 AWS_KMS key, each interleaved in slices with the raw token signing
//! on one session (cks-sim's token threads may spread slow calls, RSA, over more than one).

use crate::*;

/// Sign with one key spec against the raw token.
pub(crate) struct SignFigure {
    pub(crate) spec: &'static str,
    pub(crate) algorithm: &'static str,
    /// cks-sim's Sign (A) interleaved with the raw token's signing (B).
    pub(crate) pair: Paired,
}

/// Sign over HTTP with an AWS_KMS key of each spec, and the raw token's rate beside it.
pub(crate) async fn measure(
    set: &Settings,
    raw: &RawToken,
    run: &mut Running,
) -> Res<Vec<SignFigure>> {
    let mut out = Vec::new();
    for (spec, algorithm, rsa) in [
        ("RSA_2048", "RSASSA_PSS_SHA_256", true),
        ("ECC_NIST_P256", "ECDSA_SHA_256", false),
    ] {
        progress(&format!(
            "cks-sim: Sign with an {spec} key, and the raw token"
        ));
        let v = run
            .api
            .call(
                "CreateKey",
                json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"}),
            )
            .await?;
        let key = v["KeyMetadata"]["KeyId"].as_str().ok_or("no KeyId")?;
        let body =
            json!({"KeyId": key, "Message": b64(&[0x42u8; 32]), "SigningAlgorithm": algorithm});
        let bodies = Arc::new(vec![Bytes::from(body.to_string())]);
        let http = Workload {
            srv: run.srv,
            op: "Sign",
            bodies,
            conns: set.conns,
            bound: Bound::Timed(set.secs),
        };
        let key = raw_sign_key(&raw.anchor, rsa)?;
        let raw_side = RawSign {
            session: &raw.anchor,
            key,
            rsa,
        };
        let pair = interleave(
            Side::Http(http),
            Side::RawSign(&raw_side, set.secs),
            set.secs,
        )
        .await;
        let _ = raw.anchor.destroy_object(key);
        out.push(SignFigure {
            spec,
            algorithm,
            pair: pair?,
        });
    }
    Ok(out)
}
