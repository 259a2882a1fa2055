//! `config/broker.toml` is the documented reference: every default it states must be the
//! default the broker uses, so the comments cannot drift from the code.

use wrenmq::config::{Config, default_address_settings, load};

fn shipped() -> Config {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/broker.toml");
    load(&path).expect("config/broker.toml loads")
}

#[test]
fn the_shipped_file_states_the_built_in_defaults() {
    let file = shipped();
    let defaults = Config::default();
    assert_eq!(file.broker, defaults.broker, "[broker]");
    assert_eq!(file.journal, defaults.journal, "[journal]");
    assert_eq!(file.limits, defaults.limits, "[limits]");
    assert_eq!(file.admin, defaults.admin, "[admin]");
    let catch_all = file
        .address_settings
        .iter()
        .find(|e| e.pattern == "#")
        .expect("a # entry");
    assert_eq!(
        catch_all,
        &default_address_settings()[0],
        "[[address-settings]] match = \"#\""
    );
}
