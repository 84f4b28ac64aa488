//! The page frame shared by every console page, and the boxes for errors and notices.

use super::help::{self, Help};
use crate::app::App;
use crate::kms::error::KmsError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Which part of the console a page belongs to (for the navigation pane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Custom key stores → AWS CloudHSM key stores (the AWS look-alike pages).
    KeyStores,
    /// The simulator's own pane.
    Simulator,
}

/// A whole page: header with the Region, navigation pane, `main`.
pub fn page(app: &App, title: &str, section: Section, main: Markup) -> Markup {
    let sim = section == Section::Simulator;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cks-sim console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body class=(if sim { "simulator" } else { "kms" }) {
                header.top {
                    a.brand href="/console/key-stores" { "Key Management Service" }
                    span.badge { "cks-sim" }
                    span.region title="Region" { "Region: " (app.config.region) }
                }
                div.frame {
                    nav.side aria-label="Navigation" {
                        p.nav-head { "Custom key stores" }
                        ul {
                            li { a href="/console/key-stores"
                                aria-current=[(!sim).then_some("page")] { "AWS CloudHSM key stores" } }
                            li.muted { "External key stores (not simulated)" }
                        }
                        p.nav-head.sim-head { "Simulator" }
                        ul {
                            li { a href="/console/simulator"
                                aria-current=[sim.then_some("page")] { "Clusters, users, faults, clock" } }
                        }
                    }
                    main id="main" { (main) }
                }
            }
        }
    }
}

/// Render `markup` as an HTML response with `status`.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// The `403` page for a foreign `Host` or a state change from another origin.
pub fn forbidden() -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Forbidden · cks-sim console" } }
            body {
                h1 { "403 Forbidden" }
                p { "The console answers only requests addressed to localhost, 127.0.0.1 or [::1] \
                     (unless the server was started with --allow-remote), and accepts changes only \
                     from its own pages (same origin). A page on another site cannot drive this \
                     simulator." }
            }
        }
    };
    respond(StatusCode::FORBIDDEN, body)
}

/// A success or information message.
pub fn notice(text: &str) -> Markup {
    html! { div.flash.success role="status" { (text) } }
}

/// The error box for a failed KMS operation: exception, message, explanation and fix, then
/// `extra` (actions at hand, counts, links).
pub fn kms_error(e: &KmsError, extra: Markup) -> Markup {
    let Help { explanation, fix } = help::exception(e.kind);
    html! {
        div.flash.error role="alert" {
            p.exception { strong { (e.type_name()) } }
            p.message { (e.message) }
            p.explain { (explanation) }
            p.fix { strong { "How to fix it: " } (fix) }
            (extra)
        }
    }
}

/// The error box for a failed simulator (control door) operation.
pub fn control_error(type_name: &str, message: &str) -> Markup {
    html! {
        div.flash.error role="alert" {
            p.exception { strong { (type_name) } }
            p.message { (message) }
        }
    }
}
