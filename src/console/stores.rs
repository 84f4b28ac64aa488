//! Custom key stores → AWS CloudHSM key stores: the list with its **Key store actions**
//! (Connect, Disconnect, Edit, Delete), the create and edit forms and the delete dialog.
//! Every change goes through [`super::kms_call`], the KMS API's own entry point.

use super::help;
use super::layout::{self, Section, page, respond};
use super::{kms_call, query_value, see_other, when};
use crate::app::App;
use crate::kms::error::{KmsError, KmsErrorKind};
use crate::kms::model::{ConnectionErrorCode, ConnectionState, StoredKeyState};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// One row of the list, from `DescribeCustomKeyStores`.
#[derive(Debug, Clone)]
pub(super) struct StoreRow {
    pub id: String,
    pub name: String,
    pub cluster_id: String,
    pub state: String,
    pub error_code: Option<String>,
    pub created: f64,
}

impl StoreRow {
    fn of(v: &Value) -> StoreRow {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        StoreRow {
            id: s("CustomKeyStoreId"),
            name: s("CustomKeyStoreName"),
            cluster_id: s("CloudHsmClusterId"),
            state: s("ConnectionState"),
            error_code: v["ConnectionErrorCode"].as_str().map(str::to_string),
            created: v["CreationDate"].as_f64().unwrap_or_default(),
        }
    }
}

/// Every store (or the one named by `id`), as `DescribeCustomKeyStores` returns them.
pub(super) async fn describe(app: &Arc<App>, id: Option<&str>) -> Result<Vec<StoreRow>, KmsError> {
    let input = match id {
        Some(id) => json!({"CustomKeyStoreId": id}),
        None => json!({}),
    };
    let out = kms_call(app, "DescribeCustomKeyStores", input).await?;
    Ok(out["CustomKeyStores"]
        .as_array()
        .map(|a| a.iter().map(StoreRow::of).collect())
        .unwrap_or_default())
}

/// The help for a `ConnectionErrorCode` as the wire spells it.
fn code_help(code: &str) -> Option<help::Help> {
    serde_json::from_value::<ConnectionErrorCode>(Value::String(code.to_string()))
        .ok()
        .map(help::connection_error)
}

/// The query of the list page: which message to show after an action.
#[derive(Debug, Deserialize)]
pub struct Notice {
    notice: Option<String>,
    name: Option<String>,
}

fn notice_text(n: &Notice) -> Option<String> {
    let name = n.name.as_deref().unwrap_or("");
    Some(match n.notice.as_deref()? {
        "created" => format!("Created key store {name}. Connect it to use it."),
        "connecting" => format!(
            "Connecting key store {name}. Its connection state updates on this page when it settles."
        ),
        "disconnecting" => format!("Disconnecting key store {name}."),
        "updated" => format!("Updated key store {name}."),
        "deleted" => format!("Deleted key store {name}."),
        _ => return None,
    })
}

/// `GET /console/key-stores`: the list.
pub async fn list(State(app): State<Arc<App>>, Query(n): Query<Notice>) -> Response {
    let flash = notice_text(&n).map(|t| layout::notice(&t));
    list_with(
        &app,
        StatusCode::OK,
        html! { @if let Some(f) = flash { (f) } },
    )
    .await
}

/// The list page with `flash` above the table.
async fn list_with(app: &Arc<App>, status: StatusCode, flash: Markup) -> Response {
    match describe(app, None).await {
        Ok(rows) => respond(status, list_page(app, &rows, flash)),
        Err(e) => respond(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            page(
                app,
                "AWS CloudHSM key stores",
                Section::KeyStores,
                layout::kms_error(&e, html! {}),
            ),
        ),
    }
}

/// The list page itself (also used by the render bench).
pub fn list_page(app: &App, rows: &[StoreRow], flash: Markup) -> Markup {
    let main = html! {
        p.crumbs { "Custom key stores › AWS CloudHSM key stores" }
        h1 { "AWS CloudHSM key stores" }
        (flash)
        form #stores method="post" {
            div.toolbar {
                details.menu {
                    summary.button { "Key store actions" }
                    div.menu-items role="group" aria-label="Key store actions" {
                        button type="submit" formaction="/console/key-stores/connect" { "Connect" }
                        button type="submit" formaction="/console/key-stores/disconnect" { "Disconnect" }
                        button type="submit" formmethod="get" formaction="/console/key-stores/edit" { "Edit" }
                        button type="submit" formmethod="get" formaction="/console/key-stores/delete" { "Delete" }
                    }
                }
                a.button.primary href="/console/key-stores/create" { "Create key store" }
            }
            div.table-wrap {
                table #store-table {
                    caption { "Key stores (" (rows.len()) ")" }
                    thead { tr {
                        th scope="col" { span.sr { "Select" } }
                        th scope="col" { "Custom key store name" }
                        th scope="col" { "Custom key store ID" }
                        th scope="col" { "AWS CloudHSM cluster ID" }
                        th scope="col" { "Connection state" }
                        th scope="col" { "Creation date" }
                    } }
                    tbody {
                        @for r in rows { (store_row(r)) }
                        @if rows.is_empty() {
                            tr { td colspan="6" { "No AWS CloudHSM key stores. Choose Create key store." } }
                        }
                    }
                }
            }
        }
    };
    page(app, "AWS CloudHSM key stores", Section::KeyStores, main)
}

fn store_row(r: &StoreRow) -> Markup {
    let why = r
        .error_code
        .as_deref()
        .and_then(|c| Some((c, code_help(c)?)));
    html! {
        tr data-store=(r.id) {
            td { input type="radio" name="id" value=(r.id) required
                    aria-label={ "Select " (r.name) }; }
            td.name { a href={ "/console/key-stores/" (r.id) "/keys" } { (r.name) } }
            td.mono { (r.id) }
            td.mono { (r.cluster_id) }
            td.state-cell data-live-state=(r.state) data-id=(r.id) {
                span class={ "state state-" (r.state) } { (r.state) }
                div.why hidden[why.is_none()] {
                    p { strong.code { (why.map(|w| w.0).unwrap_or_default()) } " "
                        span.explain { (why.map(|w| w.1.explanation).unwrap_or_default()) } }
                    p { strong { "How to fix it: " }
                        span.fix-text { (why.map(|w| w.1.fix).unwrap_or_default()) } }
                }
            }
            td { (when(r.created)) }
        }
    }
}

/// `GET /console/key-stores/states`: the connection states as JSON, for the page's live update.
pub async fn states(State(app): State<Arc<App>>) -> Response {
    match describe(&app, None).await {
        Ok(rows) => {
            let stores: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let h = r.error_code.as_deref().and_then(code_help);
                    json!({
                        "id": r.id,
                        "state": r.state,
                        "code": r.error_code,
                        "explanation": h.map(|h| h.explanation),
                        "fix": h.map(|h| h.fix),
                    })
                })
                .collect();
            super::json(StatusCode::OK, &json!({ "stores": stores }))
        }
        Err(e) => super::json(
            error_status(&e),
            &json!({"__type": e.type_name(), "message": e.message}),
        ),
    }
}

/// A form naming one store (the selected row).
#[derive(Debug, Deserialize)]
pub struct IdForm {
    id: Option<String>,
}

fn nothing_selected() -> Markup {
    layout::control_error(
        "No key store selected",
        "Select a key store in the list, then choose an action.",
    )
}

pub(super) fn error_status(e: &KmsError) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The name of store `id`, for messages (empty when unknown).
fn store_name(app: &App, id: &str) -> String {
    app.world()
        .stores
        .get(id)
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

/// `POST /console/key-stores/connect`.
pub async fn connect(State(app): State<Arc<App>>, Form(f): Form<IdForm>) -> Response {
    change_connection(&app, f, "ConnectCustomKeyStore", "connecting").await
}

/// `POST /console/key-stores/disconnect`.
pub async fn disconnect(State(app): State<Arc<App>>, Form(f): Form<IdForm>) -> Response {
    change_connection(&app, f, "DisconnectCustomKeyStore", "disconnecting").await
}

async fn change_connection(app: &Arc<App>, f: IdForm, op: &str, notice: &str) -> Response {
    let Some(id) = f.id.filter(|s| !s.is_empty()) else {
        return list_with(app, StatusCode::BAD_REQUEST, nothing_selected()).await;
    };
    match kms_call(app, op, json!({ "CustomKeyStoreId": id })).await {
        Ok(_) => see_other(&format!(
            "/console/key-stores?notice={notice}&name={}",
            query_value(&store_name(app, &id))
        )),
        Err(e) => {
            let extra = action_at_hand(app, &e, &id, &store_name(app, &id));
            list_with(app, error_status(&e), layout::kms_error(&e, extra)).await
        }
    }
}

/// `GET /console/key-stores/delete?id=…`: the confirmation dialog.
pub async fn delete_confirm(State(app): State<Arc<App>>, Query(f): Query<IdForm>) -> Response {
    let Some(id) = f.id.filter(|s| !s.is_empty()) else {
        return list_with(&app, StatusCode::BAD_REQUEST, nothing_selected()).await;
    };
    let row = match describe(&app, Some(&id)).await {
        Ok(mut rows) if !rows.is_empty() => rows.remove(0),
        Ok(_) => return list_with(&app, StatusCode::NOT_FOUND, nothing_selected()).await,
        Err(e) => return list_with(&app, error_status(&e), layout::kms_error(&e, html! {})).await,
    };
    let main = html! {
        p.crumbs { "Custom key stores › AWS CloudHSM key stores › Delete" }
        h1 { "Delete key store" }
        div.dialog role="dialog" aria-labelledby="delete-title" aria-modal="false" {
            h2 #delete-title { "Delete " (row.name) "?" }
            p { "Deleting a key store removes it from KMS only: the AWS CloudHSM cluster, its users \
                 and the key material on its HSMs stay as they are. Only a DISCONNECTED key store \
                 that holds no KMS keys can be deleted." }
            dl.facts {
                dt { "Custom key store ID" } dd.mono { (row.id) }
                dt { "AWS CloudHSM cluster ID" } dd.mono { (row.cluster_id) }
                dt { "Connection state" } dd { span class={ "state state-" (row.state) } { (row.state) } }
            }
            form method="post" action="/console/key-stores/delete" {
                input type="hidden" name="id" value=(row.id);
                div.actions {
                    a.button href="/console/key-stores" { "Cancel" }
                    button.danger type="submit" { "Delete key store" }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(&app, "Delete key store", Section::KeyStores, main),
    )
}

/// `POST /console/key-stores/delete`: `DeleteCustomKeyStore`.
pub async fn delete(State(app): State<Arc<App>>, Form(f): Form<IdForm>) -> Response {
    let Some(id) = f.id.filter(|s| !s.is_empty()) else {
        return list_with(&app, StatusCode::BAD_REQUEST, nothing_selected()).await;
    };
    let name = store_name(&app, &id);
    match kms_call(
        &app,
        "DeleteCustomKeyStore",
        json!({ "CustomKeyStoreId": id }),
    )
    .await
    {
        Ok(_) => see_other(&format!(
            "/console/key-stores?notice=deleted&name={}",
            query_value(&name)
        )),
        Err(e) => {
            let extra = action_at_hand(&app, &e, &id, &name);
            list_with(&app, error_status(&e), layout::kms_error(&e, extra)).await
        }
    }
}

/// The action at hand after a refused operation: disconnect the store (when its state is in
/// the way), or see its keys (when it still holds some).
fn action_at_hand(app: &App, e: &KmsError, id: &str, name: &str) -> Markup {
    match e.kind {
        KmsErrorKind::CustomKeyStoreInvalidState => {
            let state = app.world().stores.get(id).map(|s| s.state);
            html! {
                @if state.is_some_and(|s| s != ConnectionState::Disconnected) {
                    form.inline method="post" action="/console/key-stores/disconnect" {
                        input type="hidden" name="id" value=(id);
                        "Disconnect it first: "
                        button type="submit" { "Disconnect " (name) }
                    }
                }
            }
        }
        KmsErrorKind::CustomKeyStoreHasCmks => {
            let (total, pending) = key_counts(app, id);
            html! {
                p.counts { "Key store " (name) " holds " (total) " KMS key"
                    (if total == 1 { "" } else { "s" }) ", " (pending) " of them pending deletion. " }
                p { a href={ "/console/key-stores/" (id) "/keys" } { "View the keys in " (name) } }
            }
        }
        _ => html! {},
    }
}

/// How many keys store `id` holds, and how many of them are pending deletion.
fn key_counts(app: &App, id: &str) -> (usize, usize) {
    let w = app.world();
    let mine = w
        .keys
        .values()
        .filter(|k| k.store_id.as_deref() == Some(id));
    mine.fold((0, 0), |(t, p), k| {
        (
            t + 1,
            p + usize::from(k.state == StoredKeyState::PendingDeletion),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_connection_error_code_has_help() {
        for code in [
            "CLUSTER_NOT_FOUND",
            "SUBNET_NOT_FOUND",
            "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
            "INSUFFICIENT_CLOUDHSM_HSMS",
            "NETWORK_ERRORS",
            "USER_NOT_FOUND",
            "USER_LOCKED_OUT",
            "USER_LOGGED_IN",
            "INVALID_CREDENTIALS",
            "INTERNAL_ERROR",
        ] {
            assert!(code_help(code).is_some(), "{code}");
        }
        assert!(code_help("XKS_PROXY_TIMED_OUT").is_none());
    }

    #[test]
    fn notices_name_the_store_and_unknown_ones_show_nothing() {
        let n = |notice: &str| Notice {
            notice: Some(notice.into()),
            name: Some("Example".into()),
        };
        assert_eq!(
            notice_text(&n("deleted")).as_deref(),
            Some("Deleted key store Example.")
        );
        assert!(notice_text(&n("something-else")).is_none());
    }
}
