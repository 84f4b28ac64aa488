//! The **Create key store** and **Edit** forms: `CreateCustomKeyStore` and
//! `UpdateCustomKeyStore` through the KMS API's entry point. The `kmsuser` password field is
//! always rendered empty.

use super::layout::{self, Section, page, respond};
use super::stores::{StoreRow, describe, error_status};
use super::{kms_call, query_value, see_other};
use crate::app::App;
use crate::kms::error::KmsError;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One cluster as a choice: ID, state, HSM count, lineage (backup family).
struct ClusterChoice {
    id: String,
    state: &'static str,
    hsms: usize,
    lineage: String,
}

fn clusters(app: &App) -> Vec<ClusterChoice> {
    let w = app.world();
    w.clusters
        .values()
        .map(|c| ClusterChoice {
            id: c.id.to_string(),
            state: c.state.as_str(),
            hsms: w.active_hsms(&c.id).len(),
            lineage: c.lineage.clone(),
        })
        .collect()
}

fn cluster_options(choices: &[ClusterChoice], selected: &str) -> Markup {
    html! {
        @for c in choices {
            option value=(c.id) selected[c.id == selected] {
                (c.id) " — " (c.state) ", " (c.hsms) " active HSM" (if c.hsms == 1 { "" } else { "s" })
            }
        }
    }
}

/// The create form's fields (the password is never echoed back).
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    trust_anchor: String,
    #[serde(default)]
    password: String,
}

/// `GET /console/key-stores/create`.
pub async fn create_form(State(app): State<Arc<App>>) -> Response {
    respond(
        StatusCode::OK,
        create_page(&app, &CreateForm::default(), html! {}),
    )
}

fn create_page(app: &App, f: &CreateForm, error: Markup) -> Markup {
    let choices = clusters(app);
    let main = html! {
        p.crumbs { "Custom key stores › AWS CloudHSM key stores › Create" }
        h1 { "Create key store" }
        div.form-layout {
            form.card method="post" action="/console/key-stores/create" {
                label for="name" { "Custom key store name" }
                input #name name="name" type="text" value=(f.name) required maxlength="256"
                    autocomplete="off";
                label for="cluster" { "AWS CloudHSM cluster" }
                select #cluster name="cluster" required {
                    (cluster_options(&choices, &f.cluster))
                }
                label for="trust_anchor" { "Trust anchor certificate (the cluster's customerCA.crt)" }
                input #trust_anchor_file type="file" accept=".crt,.pem,text/plain"
                    aria-label="Upload the trust anchor certificate file" data-fills="trust_anchor";
                textarea #trust_anchor name="trust_anchor" rows="8" required
                    placeholder="-----BEGIN CERTIFICATE-----" { (f.trust_anchor) }
                label for="password" { "Password of the kmsuser crypto user" }
                input #password name="password" type="password" required minlength="7"
                    maxlength="32" autocomplete="new-password";
                div.actions {
                    a.button href="/console/key-stores" { "Cancel" }
                    button.primary type="submit" { "Create key store" }
                }
            }
            aside.side-errors aria-live="polite" { (error) }
        }
    };
    page(app, "Create key store", Section::KeyStores, main)
}

/// `POST /console/key-stores/create`: `CreateCustomKeyStore`.
pub async fn create(State(app): State<Arc<App>>, Form(f): Form<CreateForm>) -> Response {
    let mut input = Map::new();
    put(&mut input, "CustomKeyStoreName", &f.name);
    put(&mut input, "CloudHsmClusterId", &f.cluster);
    put(&mut input, "TrustAnchorCertificate", &f.trust_anchor);
    put(&mut input, "KeyStorePassword", &f.password);
    match kms_call(&app, "CreateCustomKeyStore", Value::Object(input)).await {
        Ok(_) => see_other(&format!(
            "/console/key-stores?notice=created&name={}",
            query_value(&f.name)
        )),
        Err(e) => respond(
            error_status(&e),
            create_page(&app, &f, layout::kms_error(&e, html! {})),
        ),
    }
}

/// Add `value` under `member` unless it is empty (an empty field means "not given", so the
/// API reports the missing member as it would for the AWS CLI).
fn put(input: &mut Map<String, Value>, member: &str, value: &str) {
    if !value.is_empty() {
        input.insert(member.into(), Value::String(value.to_string()));
    }
}

/// The edit form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    password: String,
}

/// `GET /console/key-stores/edit?id=…`.
pub async fn edit_form(State(app): State<Arc<App>>, Query(f): Query<EditForm>) -> Response {
    match load(&app, f.id.as_deref()).await {
        Ok(row) => {
            let form = EditForm {
                id: Some(row.id.clone()),
                name: row.name.clone(),
                cluster: row.cluster_id.clone(),
                password: String::new(),
            };
            respond(StatusCode::OK, edit_page(&app, &row, &form, html! {}))
        }
        Err(e) => respond(
            error_status(&e),
            page(
                &app,
                "Edit key store",
                Section::KeyStores,
                layout::kms_error(&e, html! {}),
            ),
        ),
    }
}

async fn load(app: &Arc<App>, id: Option<&str>) -> Result<StoreRow, KmsError> {
    let id = id.filter(|s| !s.is_empty()).unwrap_or_default();
    let mut rows = describe(app, Some(id)).await?;
    rows.pop()
        .ok_or_else(|| KmsError::internal("DescribeCustomKeyStores returned no store"))
}

fn edit_page(app: &App, row: &StoreRow, f: &EditForm, error: Markup) -> Markup {
    let all = clusters(app);
    let lineage = all
        .iter()
        .find(|c| c.id == row.cluster_id)
        .map(|c| c.lineage.clone());
    // Only clusters related to the store's (one backup family) are offered, as in AWS.
    let related: Vec<ClusterChoice> = all
        .into_iter()
        .filter(|c| lineage.as_ref().is_none_or(|l| &c.lineage == l))
        .collect();
    let main = html! {
        p.crumbs { "Custom key stores › AWS CloudHSM key stores › Edit" }
        h1 { "Edit key store " (row.name) }
        p.hint { "The name can change at any time. The kmsuser password and the cluster can change \
                  only while the key store is DISCONNECTED (it is " (row.state) " now)." }
        div.form-layout {
            form.card method="post" action="/console/key-stores/edit" {
                input type="hidden" name="id" value=(row.id);
                label for="name" { "Custom key store name" }
                input #name name="name" type="text" value=(f.name) required maxlength="256"
                    autocomplete="off";
                label for="cluster" { "AWS CloudHSM cluster (related clusters only)" }
                select #cluster name="cluster" { (cluster_options(&related, &f.cluster)) }
                label for="password" { "New kmsuser password (leave empty to keep it)" }
                input #password name="password" type="password" minlength="7" maxlength="32"
                    autocomplete="new-password";
                div.actions {
                    a.button href="/console/key-stores" { "Cancel" }
                    button.primary type="submit" { "Save changes" }
                }
            }
            aside.side-errors aria-live="polite" { (error) }
        }
    };
    page(app, "Edit key store", Section::KeyStores, main)
}

/// `POST /console/key-stores/edit`: `UpdateCustomKeyStore` with the fields that changed.
pub async fn edit(State(app): State<Arc<App>>, Form(f): Form<EditForm>) -> Response {
    let row = match load(&app, f.id.as_deref()).await {
        Ok(r) => r,
        Err(e) => {
            let body = page(
                &app,
                "Edit key store",
                Section::KeyStores,
                layout::kms_error(&e, html! {}),
            );
            return respond(error_status(&e), body);
        }
    };
    let mut input = Map::new();
    input.insert("CustomKeyStoreId".into(), Value::String(row.id.clone()));
    if f.name != row.name {
        input.insert(
            "NewCustomKeyStoreName".into(),
            Value::String(f.name.clone()),
        );
    }
    if !f.cluster.is_empty() && f.cluster != row.cluster_id {
        input.insert("CloudHsmClusterId".into(), Value::String(f.cluster.clone()));
    }
    put(&mut input, "KeyStorePassword", &f.password);
    match kms_call(&app, "UpdateCustomKeyStore", Value::Object(input)).await {
        Ok(_) => see_other(&format!(
            "/console/key-stores?notice=updated&name={}",
            query_value(&f.name)
        )),
        Err(e) => respond(
            error_status(&e),
            edit_page(&app, &row, &f, layout::kms_error(&e, html! {})),
        ),
    }
}
