//! Who may use the admin API: HTTP basic with the STOMP users, bearer tokens stored as
//! SHA-256, the monitor / operator / admin roles, the address permissions behind message
//! operations, and the CSRF rule (a body must be JSON).

mod common;
#[path = "common/http.rs"]
mod http;
#[path = "common/secure.rs"]
mod secure;

use base64::Engine;
use common::{start, test_config};
use http::request;
use secure::{grant, user};
use sha2::{Digest, Sha256};
use wrenmq::config::AdminToken;

const TOKEN: &str = "scrape-secret-0123456789";

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

async fn secured() -> common::TestBroker {
    let mut config = test_config();
    config.security.allow_anonymous = Some(false);
    config.users = vec![
        user("root", "r00t", &["admin"]),
        user("watch", "w4tch", &["monitor"]),
        user("ops", "0ps", &["operator", "app"]),
        user("app", "4pp", &["app"]),
    ];
    // `app` may send and consume on app.*, browse it too; nobody but admin may manage it.
    config.security_settings = vec![
        grant(
            "#",
            &[
                "send",
                "consume",
                "browse",
                "create-address",
                "create-durable-queue",
                "delete-durable-queue",
                "delete-address",
                "manage",
            ],
            &["admin"],
        ),
        {
            let mut e = grant(
                "app.#",
                &[
                    "send",
                    "consume",
                    "browse",
                    "create-address",
                    "create-durable-queue",
                ],
                &["app", "admin"],
            );
            e.manage = vec!["admin".into()];
            e
        },
    ];
    let digest: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    config.admin.tokens = vec![AdminToken {
        name: "prometheus".into(),
        sha256: digest,
        role: "monitor".into(),
    }];
    config.admin.metrics_auth = Some(true);
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_required_and_checked() {
    let b = secured().await;
    let a = b.running.admin_addr.expect("admin");
    let none = request(a, "GET", "/api/v1/queues", &[], None).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "unauthorized");
    assert!(
        none.header("www-authenticate")
            .is_none_or(|h| !h.starts_with("Basic")),
        "no browser prompt (it would make the browser send credentials cross-site)"
    );
    let wrong = request(
        a,
        "GET",
        "/api/v1/queues",
        &[("Authorization", &basic("root", "nope"))],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let ok = request(
        a,
        "GET",
        "/api/v1/queues",
        &[("Authorization", &basic("root", "r00t"))],
        None,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let who = request(
        a,
        "GET",
        "/api/v1/whoami",
        &[("Authorization", &basic("ops", "0ps"))],
        None,
    )
    .await;
    assert_eq!(who.json()["admin_role"], "operator");
    // /metrics asks too when metrics-auth is on; a bearer token works, a wrong one does not.
    assert_eq!(request(a, "GET", "/metrics", &[], None).await.status, 401);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        request(a, "GET", "/metrics", &[("Authorization", &bearer)], None)
            .await
            .status,
        200
    );
    assert_eq!(
        request(
            a,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer guess")],
            None
        )
        .await
        .status,
        401
    );
    // Health stays open for probes.
    assert_eq!(request(a, "GET", "/healthz", &[], None).await.status, 200);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_address_permissions_decide() {
    let b = secured().await;
    let a = b.running.admin_addr.expect("admin");
    let root = basic("root", "r00t");
    let watch = basic("watch", "w4tch");
    let ops = basic("ops", "0ps");
    let app = basic("app", "4pp");
    let bearer = format!("Bearer {TOKEN}");
    let put = request(
        a,
        "PUT",
        "/api/v1/queues/app.jobs",
        &[("Authorization", &root)],
        Some("{}"),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.text());
    // Monitor (a user or the token) reads but may not change anything.
    for who in [&watch, &bearer] {
        assert_eq!(
            request(
                a,
                "GET",
                "/api/v1/queues/app.jobs",
                &[("Authorization", who)],
                None
            )
            .await
            .status,
            200
        );
        let purge = request(
            a,
            "DELETE",
            "/api/v1/queues/app.jobs/messages",
            &[("Authorization", who)],
            None,
        )
        .await;
        assert_eq!(purge.status, 403, "{}", purge.text());
    }
    // A user without an admin role is refused even reads.
    assert_eq!(
        request(a, "GET", "/api/v1/queues", &[("Authorization", &app)], None)
            .await
            .status,
        403
    );
    // Operator may send where its STOMP roles may (app.#), not elsewhere, and may not purge
    // without manage on the address.
    let sent = request(
        a,
        "POST",
        "/api/v1/addresses/app.jobs/messages",
        &[("Authorization", &ops)],
        Some(r#"{"body":"x"}"#),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let elsewhere = request(
        a,
        "POST",
        "/api/v1/addresses/billing/messages",
        &[("Authorization", &ops)],
        Some(r#"{"body":"x"}"#),
    )
    .await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.text());
    let purge = request(
        a,
        "DELETE",
        "/api/v1/queues/app.jobs/messages",
        &[("Authorization", &ops)],
        None,
    )
    .await;
    assert_eq!(purge.status, 403, "{}", purge.text());
    // Creating queues and reloading the configuration need admin.
    assert_eq!(
        request(
            a,
            "PUT",
            "/api/v1/queues/app.more",
            &[("Authorization", &ops)],
            Some("{}")
        )
        .await
        .status,
        403
    );
    let reload = request(
        a,
        "POST",
        "/api/v1/config/reload?dry_run=true",
        &[("Authorization", &ops)],
        None,
    )
    .await;
    assert_eq!(reload.status, 403);
    // Admin may.
    let purge = request(
        a,
        "DELETE",
        "/api/v1/queues/app.jobs/messages",
        &[("Authorization", &root)],
        None,
    )
    .await;
    assert_eq!(purge.json()["removed"], 1);
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_with_a_body_must_be_json() {
    let b = start(test_config()).await;
    let a = b.running.admin_addr.expect("admin");
    // What a cross-site HTML form can send: refused before anything happens.
    let form = request(
        a,
        "PUT",
        "/api/v1/queues/forged",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some("routing_type=anycast"),
    )
    .await;
    assert_eq!(form.status, 415, "{}", form.text());
    let plain = request(
        a,
        "POST",
        "/api/v1/addresses/forged/messages",
        &[("Content-Type", "text/plain")],
        Some(r#"{"body":"x"}"#),
    )
    .await;
    assert_eq!(plain.status, 415);
    assert_eq!(
        request(a, "GET", "/api/v1/queues/forged", &[], None)
            .await
            .status,
        404
    );
    // Malformed JSON is a 4xx naming the problem, not a crash.
    let bad = request(a, "PUT", "/api/v1/queues/q", &[], Some("{not json")).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json()["error"], "bad_request", "errors are JSON too");
    let unknown = request(
        a,
        "PUT",
        "/api/v1/queues/q",
        &[],
        Some(r#"{"colour":"red"}"#),
    )
    .await;
    assert_eq!(unknown.status, 400, "unknown fields are refused");
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour")
    );
    let bad_query = request(a, "GET", "/api/v1/connections?limit=lots", &[], None).await;
    assert_eq!(bad_query.status, 400);
    assert_eq!(bad_query.json()["error"], "bad_request");
    b.shutdown().await;
}

/// A bearer token with no user of its name acts with its admin role as its only STOMP role,
/// so the address permissions granted to that role apply to its message operations (the
/// console's monitor and operator tokens browse and send with them). The reloadable security
/// tables look a user's roles up again by name; a token is not in them and must keep its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_acts_with_the_address_permissions_of_its_role() {
    let mut config = test_config();
    config.security.allow_anonymous = Some(false);
    config.users = vec![user("root", "r00t", &["admin"])];
    config.security_settings = vec![grant(
        "#",
        &["send", "browse", "create-address", "create-durable-queue"],
        &["admin", "operator"],
    )];
    let digest: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    config.admin.tokens = vec![AdminToken {
        name: "oncall".into(),
        sha256: digest,
        role: "operator".into(),
    }];
    let b = start(config).await;
    let a = b.running.admin_addr.expect("admin");
    let root = basic("root", "r00t");
    let bearer = format!("Bearer {TOKEN}");
    let put = request(
        a,
        "PUT",
        "/api/v1/queues/jobs",
        &[("Authorization", &root)],
        Some("{}"),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let sent = request(
        a,
        "POST",
        "/api/v1/addresses/jobs/messages",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"queue":"jobs","body":"from the token"}"#),
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let browsed = request(
        a,
        "GET",
        "/api/v1/queues/jobs/messages",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(browsed.status, 200, "{}", browsed.text());
    assert_eq!(browsed.json()["items"][0]["body_preview"], "from the token");
    b.shutdown().await;
}
