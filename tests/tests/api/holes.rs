//! Issue 14 item 5: the smaller holes an audit found, each with its regression test.

use thor_tests::{Backend, TestApp, both};

/// Every spelling of a username that the lookup maps to an account spends that account's login
/// budget: `" handhaver"`, `"HANDHAVER "`, a tab. Ten wrong guesses in ten spellings, then the
/// right password is refused too (429), in any spelling.
async fn the_login_throttle_counts_every_spelling_of_a_name(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.demo_accounts().await;
    let spellings = [
        "handhaver",
        " handhaver",
        "handhaver ",
        "HANDHAVER",
        " Handhaver ",
        "\thandhaver",
        "handhaver\n",
        "  hAndhaver",
        "handhaver\t ",
        "\u{a0}handhaver",
    ];
    for (i, name) in spellings.iter().enumerate() {
        let res = app.login_response(name, "wrong password", "phone-1").await;
        assert_eq!(res.status(), 401, "attempt {i} ({name:?})");
    }
    for name in [" handhaver ", "handhaver"] {
        let res = app.login_response(name, "demo", "phone-1").await;
        assert_eq!(res.status(), 429, "{name:?} after ten failures");
        assert!(res.headers().contains_key("retry-after"));
    }
    // Another account from the same address still logs in.
    assert_eq!(
        app.login_response("jeugdboa", "demo", "phone-2")
            .await
            .status(),
        200
    );
    app.stop().await;
}

both!(the_login_throttle_counts_every_spelling_of_a_name);
