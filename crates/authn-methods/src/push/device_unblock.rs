//! The phone lifts its account's push block: `{"action":"unblock"}` signed with its key (`kid`),
//! like every other request it makes. Its key is the professional's possession factor, enrolled
//! from the wallet, so lifting the block from it is lifting it «from an authenticated place»,
//! as the wallet's switch does. The enrolment freeze after «ce n'était pas moi» is untouched.

use serde::Deserialize;

use super::PushApprovals;
use crate::push_request::DeviceError;

#[derive(Deserialize)]
struct UnblockBody {
    action: String,
}

impl PushApprovals {
    /// The enrolled phone asks to lift the push block of its account. Returns whether there
    /// was one; a lifted block is audited (`push_unblocked`) with the phone named.
    pub async fn unblock_from_device(&self, token: &str, now: i64) -> Result<bool, DeviceError> {
        let (device, body): (_, UnblockBody) = self.device_request(token, now).await?;
        if body.action != "unblock" {
            return Err(DeviceError::InvalidRequest("action must be unblock"));
        }
        let subject = device.subject.clone().ok_or(DeviceError::Unauthorized)?;
        let details = serde_json::json!({ "device": device.id, "via": "device" });
        Ok(self.unblock_with(&subject, Some(&subject), details, now).await?)
    }
}
