//! Console tests: a real `cks-sim serve` (SoftHSM2 token, SQLite), driven through its
//! `/console/` pages by real headless Chromium (Debian's `chromium` and `chromium-driver`)
//! over WebDriver. One `chromedriver` serves the whole binary; this file is its own harness
//! (`harness = false`) so it can start it once and stop it by PID at the end. Tests run one
//! after another; an argument filters them by name. Screenshots go to
//! `target/console-screenshots/`.

#[path = "../common/mod.rs"]
mod common;
mod webdriver;

use common::{Sim, block_on, cloudhsm_key, connected_store, create_store, default_cluster};
use serde_json::{Value, json};
use webdriver::{Browser, Driver};

type Test = (&'static str, fn(&Driver));

const TESTS: &[Test] = &[
    (
        "delete_procedure_on_a_connected_store_disconnects_first_and_leaves_the_cluster_as_it_was",
        delete_procedure_on_a_connected_store,
    ),
    (
        "delete_is_refused_while_a_key_is_pending_deletion_and_allowed_after_the_window",
        delete_refused_while_a_key_is_pending_deletion,
    ),
    (
        "create_then_connect_updates_live_then_the_key_shows_and_its_deletion_is_scheduled",
        create_connect_key_and_schedule_deletion,
    ),
    (
        "a_failed_connect_shows_the_code_its_explanation_and_the_fix",
        failed_connect_shows_explanation_and_fix,
    ),
    (
        "a_store_named_like_markup_renders_as_text_and_runs_no_script",
        markup_in_a_name_renders_as_text,
    ),
    (
        "a_cross_origin_post_is_refused_and_changes_nothing",
        cross_origin_post_is_refused,
    ),
    (
        "the_simulator_pane_shows_clusters_users_token_objects_and_sets_faults",
        simulator_pane_shows_and_sets,
    ),
    (
        "a_create_error_shows_beside_the_form_and_the_password_is_not_sent_back",
        create_error_beside_the_form,
    ),
    (
        "edit_renames_a_connected_store_and_refuses_a_new_password_until_disconnected",
        edit_follows_update_rules,
    ),
];

fn main() {
    let filter = name_filter(std::env::args().skip(1));
    let list_only = std::env::args().any(|a| a == "--list");
    let chosen: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f)))
        .collect();
    if list_only {
        for (name, _) in &chosen {
            println!("{name}: test");
        }
        return;
    }
    println!("\nrunning {} console tests", chosen.len());
    let driver = Driver::start();
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&driver)));
        println!(
            "test {name} ... {}",
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        if r.is_err() {
            failed.push(*name);
        }
    }
    driver.stop();
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(101);
    }
}

/// The first free argument, skipping libtest's options and their values (`cargo test` passes
/// e.g. `--test-threads 4` to every test binary).
fn name_filter(args: impl Iterator<Item = String>) -> Option<String> {
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--color",
        "--format",
        "--logfile",
        "--shuffle-seed",
        "-Z",
    ];
    let mut args = args;
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// The list page of `sim`.
fn list_url(sim: &Sim) -> String {
    format!("{}/console/key-stores", sim.endpoint)
}

/// Select the row of store `id`, open **Key store actions** and choose `action`.
async fn store_action(b: &Browser<'_>, id: &str, action: &str) {
    b.click_css(&format!("tr[data-store=\"{id}\"] input[type=radio]"))
        .await;
    b.click_css("details.menu summary").await;
    let path = action.to_ascii_lowercase();
    b.click_css(&format!(
        "button[formaction=\"/console/key-stores/{path}\"]"
    ))
    .await;
}

/// The connection state shown in the row of store `id`.
async fn row_state(b: &Browser<'_>, id: &str) -> String {
    b.text_of(&format!("td.state-cell[data-id=\"{id}\"] .state"))
        .await
}

/// Wait until the row of store `id` shows `state` (the page updates itself).
async fn wait_row_state(b: &Browser<'_>, id: &str, state: &str) {
    let css = format!("td.state-cell[data-id=\"{id}\"] .state");
    b.wait_text(&css, 20, |t| t == state).await;
}

/// Everything observable about a cluster except its key stores: the control door's view, its
/// users, and an independent look at its token objects (label, ID, material fingerprint).
async fn snapshot(sim: &Sim, cluster: &str) -> (Value, Value, Vec<Value>) {
    let c = sim.control();
    let mut info = c
        .call("GET", &format!("/_sim/clusters/{cluster}"), None)
        .await
        .unwrap();
    info.as_object_mut().unwrap().remove("custom_key_stores");
    let users = c
        .call("GET", &format!("/_sim/clusters/{cluster}/users"), None)
        .await
        .unwrap();
    let pin = c
        .call("GET", &format!("/_sim/clusters/{cluster}/token/pin"), None)
        .await
        .unwrap()["user_pin"]
        .as_str()
        .unwrap()
        .to_string();
    (info, users, sim.inspect_token(cluster, &pin))
}

async fn set_settings(sim: &Sim, patch: Value) {
    sim.control()
        .call("POST", "/_sim/settings", Some(patch))
        .await
        .expect("settings");
}

async fn store_exists(sim: &Sim, id: &str) -> bool {
    let r = sim
        .kms()
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await;
    match r {
        Ok(_) => true,
        Err(e) => {
            let code = aws_sdk_kms::error::ProvideErrorMetadata::code(&e).map(str::to_string);
            assert_eq!(code.as_deref(), Some("CustomKeyStoreNotFoundException"));
            false
        }
    }
}

fn delete_procedure_on_a_connected_store(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        // A key deleted while its store was disconnected leaves its material on the token
        // (an orphan), so the token has objects the delete must not touch.
        let (id, cluster) = connected_store(&sim, "ExampleKeyStore").await;
        let key = cloudhsm_key(&sim, &id).await;
        sim.kms()
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        common::disconnect(&sim, &id).await;
        sim.control()
            .call("POST", "/_sim/clock/advance", Some(json!({"days": 8})))
            .await
            .unwrap();
        sim.kms()
            .connect_custom_key_store()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        common::wait_state(&sim.kms(), &id, "CONNECTED").await;
        let before = snapshot(&sim, &cluster).await;
        let b = Browser::open(driver).await;

        // Open the console (a browser's GET / lands there) and find the row.
        b.goto(&format!("{}/", sim.endpoint)).await;
        assert!(b.url().await.ends_with("/console/key-stores"));
        assert_eq!(row_state(&b, &id).await, "CONNECTED");

        // Delete while CONNECTED: the error, its help, and nothing changes.
        store_action(&b, &id, "Delete").await;
        b.click_css(".dialog button.danger").await;
        let error = b.text_of(".flash.error").await;
        assert!(
            error.contains("CustomKeyStoreInvalidStateException"),
            "{error}"
        );
        assert!(error.contains("How to fix it"), "{error}");
        assert!(error.contains("Disconnect it first"), "{error}");
        b.screenshot("delete-refused-connected").await;
        assert_eq!(row_state(&b, &id).await, "CONNECTED");
        assert!(store_exists(&sim, &id).await);

        // Disconnect with the action at hand, then delete.
        b.click_css(".flash.error form button").await;
        wait_row_state(&b, &id, "DISCONNECTED").await;
        store_action(&b, &id, "Delete").await;
        b.screenshot("delete-dialog").await;
        b.click_css(".dialog button.danger").await;
        let ok = b.text_of(".flash.success").await;
        assert_eq!(ok, "Deleted key store ExampleKeyStore.");
        assert!(
            b.find_all(&format!("tr[data-store=\"{id}\"]"))
                .await
                .is_empty(),
            "the row is gone"
        );
        b.screenshot("key-store-deleted").await;
        assert!(!store_exists(&sim, &id).await);

        // The cluster, its users and its token objects are exactly as before.
        assert_eq!(snapshot(&sim, &cluster).await, before);
        b.quit().await;
    });
}

fn delete_refused_while_a_key_is_pending_deletion(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let (id, _) = connected_store(&sim, "PendingKeys").await;
        let key = cloudhsm_key(&sim, &id).await;
        sim.kms()
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(7)
            .send()
            .await
            .unwrap();
        common::disconnect(&sim, &id).await;
        let b = Browser::open(driver).await;
        b.goto(&list_url(&sim)).await;

        store_action(&b, &id, "Delete").await;
        b.click_css(".dialog button.danger").await;
        let error = b.text_of(".flash.error").await;
        assert!(error.contains("CustomKeyStoreHasCMKsException"), "{error}");
        assert!(
            error.contains("holds 1 KMS key, 1 of them pending deletion"),
            "{error}"
        );
        b.screenshot("delete-refused-keys").await;
        assert!(store_exists(&sim, &id).await);

        // The link leads to the key, pending deletion.
        b.click_css(".flash.error a").await;
        let state = b
            .text_of(&format!("tr[data-key=\"{key}\"] .key-state"))
            .await;
        assert!(state.starts_with("PendingDeletion"), "{state}");
        assert!(state.contains("Deletion date:"), "{state}");

        // The Simulator pane's clock passes the window; the delete then succeeds.
        b.goto(&format!("{}/console/simulator", sim.endpoint)).await;
        b.fill("#clock input[name=days]", "8").await;
        b.click_css("#clock button").await;
        b.wait_text("#clock-now", 5, |t| !t.is_empty()).await;
        b.goto(&list_url(&sim)).await;
        store_action(&b, &id, "Delete").await;
        b.click_css(".dialog button.danger").await;
        assert_eq!(
            b.text_of(".flash.success").await,
            "Deleted key store PendingKeys."
        );
        assert!(!store_exists(&sim, &id).await);
        b.quit().await;
    });
}

fn create_connect_key_and_schedule_deletion(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let cluster = default_cluster(&sim).await;
        set_settings(&sim, json!({"hold_connections": true})).await;
        let b = Browser::open(driver).await;
        b.goto(&list_url(&sim)).await;
        b.click_css("a.button.primary").await;
        b.fill("#name", "ConsoleStore").await;
        b.run(
            "document.getElementById('trust_anchor').value = arguments[0];",
            json!([sim.trust_anchor()]),
        )
        .await;
        b.fill("#password", &sim.kmsuser_password()).await;
        let chosen = b
            .run(
                "return document.getElementById('cluster').value;",
                json!([]),
            )
            .await;
        assert_eq!(chosen, json!(cluster));
        b.screenshot("create-key-store").await;
        b.click_css("form.card button.primary").await;
        let ok = b.text_of(".flash.success").await;
        assert!(ok.starts_with("Created key store ConsoleStore."), "{ok}");
        let id = b
            .run(
                "return document.querySelector('tr[data-store]').getAttribute('data-store');",
                json!([]),
            )
            .await
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(row_state(&b, &id).await, "DISCONNECTED");

        // Connect: CONNECTING, held; then CONNECTED on the same page, without a reload.
        store_action(&b, &id, "Connect").await;
        wait_row_state(&b, &id, "CONNECTING").await;
        b.screenshot("key-store-connecting").await;
        b.run("window.sameDocument = 'yes';", json!([])).await;
        set_settings(&sim, json!({"hold_connections": false})).await;
        wait_row_state(&b, &id, "CONNECTED").await;
        assert_eq!(
            b.run("return window.sameDocument;", json!([])).await,
            json!("yes"),
            "the page was not reloaded"
        );
        b.screenshot("key-stores").await;

        // A key created with the SDK shows in the store's keys; schedule its deletion there.
        let key = cloudhsm_key(&sim, &id).await;
        b.click_css(&format!("tr[data-store=\"{id}\"] td.name a"))
            .await;
        let row = format!("tr[data-key=\"{key}\"]");
        assert_eq!(
            b.text_of(&format!("{row} .key-state .state")).await,
            "Enabled"
        );
        b.screenshot("store-keys").await;
        b.fill(&format!("{row} input[name=days]"), "7").await;
        b.click_css(&format!("{row} button.danger")).await;
        let ok = b.text_of(".flash.success").await;
        assert_eq!(ok, format!("Scheduled the deletion of key {key}."));
        assert!(
            b.text_of(&format!("{row} .key-state"))
                .await
                .starts_with("PendingDeletion")
        );
        let meta = sim.kms().describe_key().key_id(&key).send().await.unwrap();
        let meta = meta.key_metadata().unwrap();
        assert_eq!(meta.key_state().unwrap().as_str(), "PendingDeletion");
        let window = meta.deletion_date().unwrap().secs() - meta.creation_date().unwrap().secs();
        assert!(
            (7 * 86_400 - 60..=7 * 86_400 + 60).contains(&window),
            "{window}"
        );
        b.find(&format!(
            "{row} form[action=\"/console/keys/cancel-deletion\"] button"
        ))
        .await;
        b.quit().await;
    });
}

fn failed_connect_shows_explanation_and_fix(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let cluster = default_cluster(&sim).await;
        let id = create_store(&sim, "WrongPassword", &cluster, "not-the-password").await;
        let b = Browser::open(driver).await;
        b.goto(&list_url(&sim)).await;
        store_action(&b, &id, "Connect").await;
        wait_row_state(&b, &id, "FAILED").await;
        let why = b
            .text_of(&format!("td.state-cell[data-id=\"{id}\"] .why"))
            .await;
        assert!(why.contains("INVALID_CREDENTIALS"), "{why}");
        assert!(
            why.contains("not kmsuser's current password"),
            "explanation: {why}"
        );
        assert!(
            why.contains("How to fix it: Disconnect the key store, use Edit"),
            "fix: {why}"
        );
        b.screenshot("connect-failed").await;
        let api = sim
            .kms()
            .describe_custom_key_stores()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        let entry = &api.custom_key_stores()[0];
        assert_eq!(
            entry.connection_error_code().unwrap().as_str(),
            "INVALID_CREDENTIALS"
        );
        // A fresh load shows the same (rendered by the server, not only by the script).
        b.goto(&list_url(&sim)).await;
        let why = b
            .text_of(&format!("td.state-cell[data-id=\"{id}\"] .why"))
            .await;
        assert!(why.contains("INVALID_CREDENTIALS"), "{why}");
        // The password never appears in any page.
        let html = b
            .run("return document.documentElement.outerHTML;", json!([]))
            .await;
        assert!(!html.as_str().unwrap().contains("not-the-password"));

        // Readable at 390 px: the page itself does not scroll sideways (wide tables do,
        // inside their own box).
        b.resize(390, 844).await;
        b.goto(&list_url(&sim)).await;
        let widths = b
            .run(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                json!([]),
            )
            .await;
        assert_eq!(widths[0], widths[1], "no sideways page scroll at 390 px");
        b.screenshot("key-stores-narrow").await;
        b.quit().await;
    });
}

const XSS_NAME: &str = "<img src=x onerror=\"window.pwned=1\">";

fn markup_in_a_name_renders_as_text(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let cluster = default_cluster(&sim).await;
        let id = create_store(&sim, XSS_NAME, &cluster, &sim.kmsuser_password()).await;
        let b = Browser::open(driver).await;
        let pages = [
            list_url(&sim),
            format!(
                "{}?notice=created&name={}",
                list_url(&sim),
                "%3Cscript%3Ewindow.pwned%3D2%3C%2Fscript%3E"
            ),
            format!("{}/console/key-stores/delete?id={id}", sim.endpoint),
            format!("{}/console/key-stores/edit?id={id}", sim.endpoint),
            format!("{}/console/key-stores/{id}/keys", sim.endpoint),
        ];
        for url in &pages {
            b.goto(url).await;
            let found = b
                .run(
                    "return [document.querySelectorAll('main img, main script').length, \
                     window.pwned === undefined, document.querySelector('main').textContent];",
                    json!([]),
                )
                .await;
            assert_eq!(found[0], json!(0), "no element injected on {url}");
            assert_eq!(found[1], json!(true), "no script ran on {url}");
        }
        b.goto(&list_url(&sim)).await;
        assert_eq!(
            b.text_of(&format!("tr[data-store=\"{id}\"] td.name")).await,
            XSS_NAME
        );
        b.goto(&pages[1]).await;
        assert_eq!(
            b.text_of(".flash.success").await,
            "Created key store <script>window.pwned=2</script>. Connect it to use it."
        );
        b.goto(&pages[0]).await;
        b.screenshot("markup-name-as-text").await;
        b.quit().await;
    });
}

/// A one-page web server on another origin (another loopback port), as "another site".
fn serve_one_page(html: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    format!("http://{addr}/")
}

fn cross_origin_post_is_refused(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let cluster = default_cluster(&sim).await;
        let id = create_store(&sim, "Victim", &cluster, &sim.kmsuser_password()).await;

        // A page on another origin posts a form to the console in the browser.
        let evil = serve_one_page(format!(
            "<!doctype html><form id=f method=post action=\"{}/console/key-stores/delete\">\
             <input type=hidden name=id value=\"{id}\"></form>\
             <script>document.getElementById('f').submit()</script>",
            sim.endpoint
        ));
        let b = Browser::open(driver).await;
        b.goto(&evil).await;
        b.wait_text("h1", 10, |t| t == "403 Forbidden").await;
        assert!(store_exists(&sim, &id).await);

        // The same over plain HTTP: a foreign Origin, and none at all, are refused.
        let c = sim.control();
        let form = format!("id={id}").into_bytes();
        let ctype = ("content-type", "application/x-www-form-urlencoded");
        for origin in [Some("http://evil.example"), Some("null"), None] {
            let mut headers = vec![ctype];
            if let Some(o) = origin {
                headers.push(("origin", o));
            }
            let (status, _) = c
                .raw("POST", "/console/key-stores/delete", &headers, form.clone())
                .await
                .unwrap();
            assert_eq!(status, 403, "origin {origin:?}");
        }
        assert!(store_exists(&sim, &id).await);

        // Reached under a foreign DNS name (as after DNS rebinding), even a GET is refused.
        let port = sim.endpoint.rsplit(':').next().unwrap().to_string();
        let evil_host = format!("rebind.example:{port}");
        let (status, _) = c
            .raw(
                "GET",
                "/console/key-stores",
                &[("host", evil_host.as_str())],
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(status, 403);

        // From its own origin, the same post goes through.
        let own = sim.endpoint.clone();
        let (status, _) = c
            .raw(
                "POST",
                "/console/key-stores/delete",
                &[ctype, ("origin", own.as_str())],
                form,
            )
            .await
            .unwrap();
        assert_eq!(status, 303);
        assert!(!store_exists(&sim, &id).await);
        b.quit().await;
    });
}

fn simulator_pane_shows_and_sets(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let (id, cluster) = connected_store(&sim, "SimPane").await;
        cloudhsm_key(&sim, &id).await;
        let b = Browser::open(driver).await;
        b.goto(&format!("{}/console/simulator", sim.endpoint)).await;
        let section = format!("section[data-cluster=\"{cluster}\"]");
        let text = b.text_of(&section).await;
        for expected in ["us-east-1a", "us-east-1b", "kmsuser", "admin", "kms-key"] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        let objects = sim
            .control()
            .call("GET", &format!("/_sim/clusters/{cluster}/token"), None)
            .await
            .unwrap();
        for o in objects["objects"].as_array().unwrap() {
            let fp = o["fingerprint"].as_str().unwrap();
            assert!(text.contains(fp), "fingerprint {fp} shown");
        }
        b.screenshot("simulator").await;

        // Turn the network-down fault on from the pane: the control door sees it.
        b.run(
            "document.querySelector(arguments[0] + ' select[name=fault]').value = 'network-down';",
            json!([section]),
        )
        .await;
        b.click_css(&format!("{section} button[value=true]")).await;
        b.wait_text(&section, 10, |t| t.contains("Active: network_down"))
            .await;
        let c = sim
            .control()
            .call("GET", &format!("/_sim/clusters/{cluster}"), None)
            .await
            .unwrap();
        assert_eq!(c["faults"]["network_down"], json!(true));
        b.quit().await;
    });
}

fn create_error_beside_the_form(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        default_cluster(&sim).await;
        let b = Browser::open(driver).await;
        b.goto(&format!("{}/console/key-stores/create", sim.endpoint))
            .await;
        b.fill("#name", "WrongAnchor").await;
        b.fill(
            "#trust_anchor",
            "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----",
        )
        .await;
        b.fill("#password", "SomePassw0rd").await;
        b.click_css("form.card button.primary").await;
        let error = b.text_of(".side-errors .flash.error").await;
        assert!(error.contains("IncorrectTrustAnchorException"), "{error}");
        assert!(error.contains("How to fix it: Upload or paste"), "{error}");
        b.screenshot("create-error").await;
        // The form keeps what was typed, except the password.
        let values = b
            .run(
                "return ['name', 'password'].map(i => document.getElementById(i).value);",
                json!([]),
            )
            .await;
        assert_eq!(values, json!(["WrongAnchor", ""]));
        let html = b
            .run("return document.documentElement.outerHTML;", json!([]))
            .await;
        assert!(!html.as_str().unwrap().contains("SomePassw0rd"));
        let stores = sim.kms().describe_custom_key_stores().send().await.unwrap();
        assert!(stores.custom_key_stores().is_empty(), "nothing was created");
        b.quit().await;
    });
}

fn edit_follows_update_rules(driver: &Driver) {
    let sim = Sim::start();
    block_on(async {
        let (id, _) = connected_store(&sim, "BeforeRename").await;
        let b = Browser::open(driver).await;
        b.goto(&list_url(&sim)).await;
        store_action(&b, &id, "Edit").await;
        b.fill("#name", "AfterRename").await;
        b.click_css("form.card button.primary").await;
        assert_eq!(
            b.text_of(".flash.success").await,
            "Updated key store AfterRename."
        );
        let name = |v: aws_sdk_kms::operation::describe_custom_key_stores::DescribeCustomKeyStoresOutput| {
            v.custom_key_stores()[0]
                .custom_key_store_name()
                .unwrap()
                .to_string()
        };
        let kms = sim.kms();
        let described = kms
            .describe_custom_key_stores()
            .custom_key_store_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(name(described), "AfterRename");

        // A new password while CONNECTED: UpdateCustomKeyStore's refusal, nothing changed.
        store_action(&b, &id, "Edit").await;
        b.fill("#password", "AnotherPassw0rd").await;
        b.click_css("form.card button.primary").await;
        let error = b.text_of(".side-errors .flash.error").await;
        assert!(
            error.contains("CustomKeyStoreInvalidStateException"),
            "{error}"
        );
        assert!(error.contains("disconnect it"), "{error}");
        let html = b
            .run("return document.documentElement.outerHTML;", json!([]))
            .await;
        assert!(!html.as_str().unwrap().contains("AnotherPassw0rd"));
        assert_eq!(row_state_api(&sim, &id).await, "CONNECTED");
        b.quit().await;
    });
}

async fn row_state_api(sim: &Sim, id: &str) -> String {
    sim.kms()
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap()
        .custom_key_stores()[0]
        .connection_state()
        .unwrap()
        .as_str()
        .to_string()
}
