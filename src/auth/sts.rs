//! STS on the simulator's port: `GetCallerIdentity` in the query protocol (a form-encoded
//! `POST /`, or a presigned `GET /?Action=GetCallerIdentity&…`), answered in XML as AWS does.

use super::Caller;
use sha2::{Digest, Sha256};

/// The query protocol's API version for STS.
pub const VERSION: &str = "2011-06-15";
const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An STS answer: status and XML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlReply {
    /// HTTP status.
    pub status: u16,
    /// The XML document.
    pub body: String,
}

/// Answer the STS request whose (decoded) parameters are `params`, from `caller`.
pub fn handle(params: &[(String, String)], caller: &Caller, request_id: &str) -> XmlReply {
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.as_str());
    match action {
        Some("GetCallerIdentity") => XmlReply {
            status: 200,
            body: get_caller_identity(caller, request_id),
        },
        Some(other) => error_reply(
            400,
            "InvalidAction",
            &format!("Could not find operation {other} for version {VERSION}"),
            request_id,
        ),
        None => error_reply(
            400,
            "MissingAction",
            "The request is missing an action or a required parameter.",
            request_id,
        ),
    }
}

/// The caller's ARN: the root user's, or the IAM user's.
pub fn caller_arn(caller: &Caller) -> String {
    match &caller.user {
        None => format!("arn:aws:iam::{}:root", caller.account),
        Some(u) => format!("arn:aws:iam::{}:user/{u}", caller.account),
    }
}

/// The caller's unique ID: the account ID for the root user; for an IAM user, `AIDA` and 17
/// characters derived from the account and name (stable across restarts, like AWS's own).
pub fn caller_user_id(caller: &Caller) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    match &caller.user {
        None => caller.account.clone(),
        Some(u) => {
            let h = Sha256::digest(format!("{}:{u}", caller.account));
            let tail: String = h
                .iter()
                .take(17)
                .map(|b| ALPHABET[usize::from(b % 32)] as char)
                .collect();
            format!("AIDA{tail}")
        }
    }
}

fn get_caller_identity(caller: &Caller, request_id: &str) -> String {
    format!(
        "<GetCallerIdentityResponse xmlns=\"{XMLNS}\">\n  <GetCallerIdentityResult>\n    \
         <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  \
         </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  \
         </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        escape(&caller_arn(caller)),
        escape(&caller_user_id(caller)),
        escape(&caller.account),
        escape(request_id)
    )
}

/// An STS error document (`ErrorResponse`, `Sender` faults).
pub fn error_reply(status: u16, code: &str, message: &str, request_id: &str) -> XmlReply {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    XmlReply {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>{kind}</Type>\n    \
             <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
             <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            escape(code),
            escape(message),
            escape(request_id)
        ),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: Option<&str>) -> Caller {
        Caller {
            access_key: "k".into(),
            account: "444455556666".into(),
            region: "eu-west-1".into(),
            user: user.map(str::to_string),
        }
    }

    #[test]
    fn root_and_user_identities() {
        assert_eq!(caller_arn(&caller(None)), "arn:aws:iam::444455556666:root");
        assert_eq!(caller_user_id(&caller(None)), "444455556666");
        let c = caller(Some("alice"));
        assert_eq!(caller_arn(&c), "arn:aws:iam::444455556666:user/alice");
        let id = caller_user_id(&c);
        assert!(id.starts_with("AIDA") && id.len() == 21, "{id}");
        assert_eq!(id, caller_user_id(&c), "stable");
    }

    #[test]
    fn unknown_action_is_invalid_action() {
        let r = handle(
            &[("Action".into(), "AssumeRole".into())],
            &caller(None),
            "r",
        );
        assert_eq!(r.status, 400);
        assert!(r.body.contains("<Code>InvalidAction</Code>"), "{}", r.body);
    }
}
