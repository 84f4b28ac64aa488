//! Token provisioning: the only place that calls `C_InitToken` and `C_InitPIN`.
//!
//! Soft tokens (SoftHSM2, kryoptic) let us create a token per simulated cluster. The AWS
//! CloudHSM library has no `C_InitToken`/`C_InitPIN`/`C_SetPIN`: with it the provisioner is
//! `Provisioner::None`, tokens must already exist and users are managed outside.

use super::error::{HsmError, HsmOp};
use super::module::Module;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

/// How tokens come to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioner {
    /// A soft token: create tokens on free slots with `C_InitToken` and `C_InitPIN`.
    SoftToken,
    /// A real HSM: tokens exist already; no provisioning call is ever made.
    None,
}

impl Provisioner {
    /// Create a token labelled `label` on a free slot, with `so_pin` and `user_pin`, unless a
    /// token with that label exists already (then nothing is done). Blocking.
    pub fn ensure_token(
        self,
        module: &Module,
        label: &str,
        so_pin: &str,
        user_pin: &str,
    ) -> Result<(), HsmError> {
        match module.find_token(label) {
            Ok(_) => return Ok(()),
            Err(HsmError::TokenNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        if self == Provisioner::None {
            return Err(HsmError::TokenNotFound {
                label: label.to_string(),
            });
        }
        let ctx = module.ctx();
        let cls = |e| HsmError::classify(HsmOp::Provision, e);
        let free = ctx
            .get_all_slots()
            .map_err(cls)?
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
            .ok_or_else(|| HsmError::NoFreeSlot {
                label: label.to_string(),
            })?;
        let so = AuthPin::from(so_pin.to_string());
        ctx.init_token(free, &so, label).map_err(cls)?;
        // SoftHSM2 moves the new token to a new slot number: find it again by label.
        let slot = module.find_token(label)?;
        let session = ctx.open_rw_session(slot).map_err(cls)?;
        session.login(UserType::So, Some(&so)).map_err(cls)?;
        session
            .init_pin(&AuthPin::from(user_pin.to_string()))
            .map_err(cls)?;
        session.logout().map_err(cls)?;
        Ok(())
    }
}
