//! Phase 3: the same Encrypt, Decrypt and GenerateDataKey against `moto_server` (ordinary
//! keys only: moto has no CloudHSM key stores).

use crate::*;

/// moto's figures, or `None` when `MOTO_SERVER_BIN` is unset.
pub(crate) async fn measure(set: &Settings) -> Res<Option<Trio>> {
    let Some(bin) = &set.moto_bin else {
        return Ok(None);
    };
    progress(&format!("moto: starting {}", bin.display()));
    let (mut proc, maddr, took) = start_moto(set, bin).await?;
    progress(&format!(
        "moto: up on {maddr} after {}, pid {}",
        secs(took),
        proc.pid()
    ));
    let mut mapi = Api::new(maddr).await?;
    let mkey = create_key(&mut mapi, None).await?;
    let msrv = Server {
        addr: maddr,
        pid: proc.pid(),
    };
    let t = trio(msrv, &mut mapi, &mkey, set, None).await?;
    drop(mapi);
    proc.stop();
    Ok(Some(t))
}
