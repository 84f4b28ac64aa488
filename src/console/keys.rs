//! A key store's KMS keys (the "find the KMS keys in an AWS CloudHSM key store" step), with
//! **Schedule key deletion** and **Cancel key deletion** through the KMS API's entry point.

use super::layout::{self, Section, page, respond};
use super::stores::{StoreRow, describe, error_status};
use super::{kms_call, query_value, see_other, when};
use crate::app::App;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One key as the page shows it.
#[derive(Debug, Clone)]
pub(super) struct KeyRow {
    pub id: String,
    pub aliases: Vec<String>,
    pub state: &'static str,
    pub deletion_date: Option<f64>,
    pub created: f64,
}

/// The keys of store `id` with their aliases and visible states, oldest first.
fn store_keys(app: &App, id: &str) -> Vec<KeyRow> {
    let w = app.world();
    let mut aliases: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for a in w.aliases.values() {
        aliases
            .entry(a.target_key_id.as_str())
            .or_default()
            .push(a.name.clone());
    }
    let mut rows: Vec<KeyRow> = w
        .keys
        .values()
        .filter(|k| k.store_id.as_deref() == Some(id))
        .map(|k| KeyRow {
            id: k.id.to_string(),
            aliases: aliases.remove(k.id.as_str()).unwrap_or_default(),
            state: crate::kms::visible_state(&w, k).as_str(),
            deletion_date: k.deletion_date.map(crate::api::Timestamp::seconds),
            created: k.creation_date.seconds(),
        })
        .collect();
    rows.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.id.cmp(&b.id)));
    rows
}

/// The page's query: which message to show after an action.
#[derive(Debug, Deserialize)]
pub struct KeyNotice {
    notice: Option<String>,
    key: Option<String>,
}

fn notice_text(n: &KeyNotice) -> Option<String> {
    let key = n.key.as_deref().unwrap_or("");
    Some(match n.notice.as_deref()? {
        "scheduled" => format!("Scheduled the deletion of key {key}."),
        "canceled" => format!("Canceled the deletion of key {key}. The key is disabled."),
        _ => return None,
    })
}

/// `GET /console/key-stores/{id}/keys`.
pub async fn list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(n): Query<KeyNotice>,
) -> Response {
    let flash = notice_text(&n).map(|t| layout::notice(&t));
    render(
        &app,
        &id,
        StatusCode::OK,
        html! { @if let Some(f) = flash { (f) } },
    )
    .await
}

async fn render(app: &Arc<App>, id: &str, status: StatusCode, flash: Markup) -> Response {
    // `describe` goes through the KMS entry point, which first completes due deletions.
    match describe(app, Some(id)).await {
        Ok(rows) if !rows.is_empty() => {
            let keys = store_keys(app, id);
            respond(status, keys_page(app, &rows[0], &keys, flash))
        }
        Ok(_) => respond(StatusCode::NOT_FOUND, html! {}),
        Err(e) => respond(
            error_status(&e),
            page(
                app,
                "Keys",
                Section::KeyStores,
                layout::kms_error(&e, html! {}),
            ),
        ),
    }
}

/// The keys page itself (also used by the render bench).
pub fn keys_page(app: &App, store: &StoreRow, keys: &[KeyRow], flash: Markup) -> Markup {
    let main = html! {
        p.crumbs { a href="/console/key-stores" { "AWS CloudHSM key stores" } " › " (store.name) " › Keys" }
        h1 { "KMS keys in " (store.name) }
        dl.facts {
            dt { "Custom key store ID" } dd.mono { (store.id) }
            dt { "AWS CloudHSM cluster ID" } dd.mono { (store.cluster_id) }
            dt { "Connection state" } dd { span class={ "state state-" (store.state) } { (store.state) } }
        }
        (flash)
        div.table-wrap {
            table #key-table {
                caption { "Customer managed keys in this key store (" (keys.len()) ")" }
                thead { tr {
                    th scope="col" { "Key ID" }
                    th scope="col" { "Aliases" }
                    th scope="col" { "Status" }
                    th scope="col" { "Creation date" }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for k in keys { (key_row(&store.id, k)) }
                    @if keys.is_empty() {
                        tr { td colspan="5" { "This key store holds no KMS keys." } }
                    }
                }
            }
        }
    };
    page(app, "Keys", Section::KeyStores, main)
}

fn key_row(store_id: &str, k: &KeyRow) -> Markup {
    let pending = k.state == "PendingDeletion";
    html! {
        tr data-key=(k.id) {
            td.mono { (k.id) }
            td { @for a in &k.aliases { span.alias { (a) } " " } }
            td.key-state {
                span class={ "state state-" (k.state) } { (k.state) }
                @if let (true, Some(d)) = (pending, k.deletion_date) {
                    br; span.small { "Deletion date: " (when(d)) }
                }
            }
            td { (when(k.created)) }
            td {
                @if pending {
                    form.inline method="post" action="/console/keys/cancel-deletion" {
                        input type="hidden" name="key_id" value=(k.id);
                        input type="hidden" name="store" value=(store_id);
                        button type="submit" { "Cancel key deletion" }
                    }
                } @else {
                    form.inline method="post" action="/console/keys/schedule-deletion" {
                        input type="hidden" name="key_id" value=(k.id);
                        input type="hidden" name="store" value=(store_id);
                        label { "Waiting period (days) "
                            input.days type="number" name="days" min="7" max="30" value="30" required; }
                        " "
                        button.danger type="submit" { "Schedule key deletion" }
                    }
                }
            }
        }
    }
}

/// A key action's form.
#[derive(Debug, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    store: String,
    days: Option<String>,
}

/// `POST /console/keys/schedule-deletion`: `ScheduleKeyDeletion`.
pub async fn schedule_deletion(State(app): State<Arc<App>>, Form(f): Form<KeyForm>) -> Response {
    let mut input = json!({ "KeyId": f.key_id });
    if let Some(d) = f.days.as_deref().filter(|d| !d.is_empty()) {
        // A number goes through as a number; anything else as given, so the API's own type
        // check answers it.
        input["PendingWindowInDays"] = d.parse::<i64>().map_or_else(|_| json!(d), |n| json!(n));
    }
    key_action(&app, f, "ScheduleKeyDeletion", input, "scheduled").await
}

/// `POST /console/keys/cancel-deletion`: `CancelKeyDeletion`.
pub async fn cancel_deletion(State(app): State<Arc<App>>, Form(f): Form<KeyForm>) -> Response {
    let input = json!({ "KeyId": f.key_id });
    key_action(&app, f, "CancelKeyDeletion", input, "canceled").await
}

async fn key_action(
    app: &Arc<App>,
    f: KeyForm,
    op: &str,
    input: serde_json::Value,
    notice: &str,
) -> Response {
    match kms_call(app, op, input).await {
        Ok(_) => see_other(&format!(
            "/console/key-stores/{}/keys?notice={notice}&key={}",
            query_value(&f.store),
            query_value(&f.key_id)
        )),
        Err(e) => {
            let status = error_status(&e);
            render(app, &f.store, status, layout::kms_error(&e, html! {})).await
        }
    }
}
