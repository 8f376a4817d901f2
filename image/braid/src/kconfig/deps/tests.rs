//! The Kconfig reader on a miniature tree that uses every construct it follows.

use super::*;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |p: &str, t: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    };
    w(
        "Kconfig",
        "mainmenu \"test\"\n\nconfig NET\n\tbool \"Networking\"\n\nif NET\nsource \"net/Kconfig\"\nendif\n\n\
         menu \"Drivers\"\n\tdepends on HAS_IOMEM\n\nconfig FOO\n\ttristate \"Foo\"\n\thelp\n\t  This\n\t  depends on BOGUS\n\n\
         endmenu\n\nsource \"arch/$(SRCARCH)/Kconfig\"\n",
    );
    w(
        "net/Kconfig",
        "config INET\n\tbool \"TCP/IP\"\n\nconfig IPV6\n\tbool \"IPv6\"\n\tdepends on INET\n\n\
         config MPTCP\n\tbool \"MPTCP\"\n\tdepends on INET\n\nconfig MPTCP_IPV6\n\tbool\n\tdepends on MPTCP && \\\n\t\tIPV6=y\n\tdefault y\n\n\
         config SELECTED_ONLY\n\tbool\n",
    );
    w(
        "arch/mips/Kconfig",
        "config HAS_IOMEM\n\tbool \"iomem\"\n\tdepends on !NO_IOMEM\n",
    );
    dir
}

fn cfg(text: &str) -> BTreeMap<String, String> {
    crate::kconfig::parse_config(text)
}

#[test]
fn finds_symbols_through_sources() {
    let dir = tree();
    let index = Index::load(dir.path(), "mips").unwrap();
    for s in [
        "NET",
        "INET",
        "IPV6",
        "MPTCP",
        "MPTCP_IPV6",
        "FOO",
        "HAS_IOMEM",
        "SELECTED_ONLY",
    ] {
        assert!(index.defs.contains_key(s), "{s}");
    }
    assert!(!index.defs.contains_key("BOGUS"), "help text is not parsed");
}

#[test]
fn explains_unmet_dependencies() {
    let dir = tree();
    let index = Index::load(dir.path(), "mips").unwrap();
    let config = cfg("CONFIG_NET=y\nCONFIG_INET=y\nCONFIG_MPTCP=y\n");
    let why = index.explain("MPTCP_IPV6", &config);
    assert_eq!(
        why,
        ["net/Kconfig:14: depends on `MPTCP && IPV6=y` [MPTCP=y, IPV6=n]"]
    );

    let why = index.explain("MPTCP", &cfg("CONFIG_INET=y\n"));
    assert_eq!(
        why,
        ["Kconfig:6: `NET` [NET=n]"],
        "the enclosing if is reported"
    );

    let why = index.explain("FOO", &cfg("CONFIG_NO_IOMEM=y\n"));
    assert_eq!(
        why,
        ["Kconfig:11: `HAS_IOMEM` [HAS_IOMEM=n]"],
        "menu dependencies apply"
    );

    let why = index.explain("SELECTED_ONLY", &cfg("CONFIG_NET=y\n"));
    assert!(why[0].contains("has no prompt"), "{why:?}");

    let why = index.explain("NOPE", &config);
    assert!(why[0].contains("no such symbol"), "{why:?}");
}

#[test]
fn expressions() {
    let c = cfg("CONFIG_A=y\nCONFIG_B=m\nCONFIG_N=5\nCONFIG_S=\"x\"\n");
    assert_eq!(eval("A", &c), 2);
    assert_eq!(eval("B", &c), 1);
    assert_eq!(eval("C", &c), 0);
    assert_eq!(eval("A && B", &c), 1);
    assert_eq!(eval("C || B", &c), 1);
    assert_eq!(eval("!C && (A || C)", &c), 2);
    assert_eq!(eval("B=m", &c), 2);
    assert_eq!(eval("A != y", &c), 0);
    assert_eq!(eval("N >= 4", &c), 2);
    assert_eq!(eval("S = \"x\"", &c), 2);
    assert_eq!(
        eval("$(cc-option,-mfoo)", &c),
        2,
        "macros are opaque and true"
    );
}
