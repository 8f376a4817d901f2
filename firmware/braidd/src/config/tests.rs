//! Good files parse; every bad one names its field.

use super::*;

const KEY: &str = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const KEY2: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

fn router(extra: &str) -> String {
    format!(
        "mode = \"router\"\n[router]\nprivate_key = \"{KEY}\"\nconcentrator = \"192.0.2.1:4500\"\n\
         concentrator_public_key = \"{KEY2}\"\naddress = \"10.77.0.2/24\"\n{extra}\
         [[router.wan]]\nname = \"dsl\"\ndevice = \"eth1\"\ncap_mbit = 18.5\n\
         [[router.wan]]\nname = \"lte\"\ndevice = \"wwan0\"\nbackup = true\n"
    )
}

fn err(text: &str) -> String {
    Config::parse(Path::new("braidd.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_router_file() {
    let c = Config::parse(Path::new("braidd.toml"), &router("")).unwrap();
    let Mode::Router(r) = c.mode else { panic!() };
    assert_eq!(r.wans.len(), 2);
    assert_eq!(r.wans[0].cap_bps, Some(18_500_000));
    assert!(r.wans[1].backup);
    assert_eq!(r.concentrator, "192.0.2.1:4500".parse().unwrap());
    assert_eq!(r.psk, [0; 32]);
    assert_eq!(c.tun, "braid0");
    assert_eq!(c.classes.interactive_max_size, 256);
}

#[test]
fn a_concentrator_file() {
    let text = format!(
        "mode = \"concentrator\"\n[concentrator]\nprivate_key = \"{KEY}\"\nlisten = \"0.0.0.0:4500\"\n\
         address = \"10.77.0.1/24\"\nnat_interface = \"eth0\"\n\
         [[concentrator.peer]]\nname = \"home\"\npublic_key = \"{KEY2}\"\naddress = \"10.77.0.2\"\n\
         [classes]\nredundant_ports = [5060]\n"
    );
    let c = Config::parse(Path::new("c.toml"), &text).unwrap();
    let Mode::Concentrator(k) = c.mode else {
        panic!()
    };
    assert_eq!(k.peers.len(), 1);
    assert_eq!(k.nat_interface.as_deref(), Some("eth0"));
    assert_eq!(c.classes.redundant_ports, [5060]);
}

#[test]
fn errors_name_the_field() {
    assert!(
        err(&router("").replace("\"router\"\n[router]", "\"bridge\"\n[router]"))
            .contains("field `mode`: `bridge`; valid modes are \"router\" and \"concentrator\"")
    );
    assert!(err(&router("").replace(KEY, "abc")).contains("field `router.private_key`: not base64"));
    assert!(err(&router("").replace(KEY, "YWJj")).contains("3 bytes after decoding"));
    assert!(err(&router("").replace("192.0.2.1:4500", "example"))
        .contains("field `router.concentrator`"));
    assert!(
        err(&router("").replace("10.77.0.2/24", "10.77.0.2")).contains("field `router.address`")
    );
    assert!(err(&router("").replace("cap_mbit = 18.5", "cap_mbit = 0"))
        .contains("field `router.wan[0].cap_mbit`"));
    assert!(err(&router("").replace("name = \"lte\"", "name = \"dsl\""))
        .contains("`dsl` is used twice"));
    assert!(
        err(&router("").replace("backup = true", "backup = true\nspeed = 3"))
            .contains("unknown field `speed`")
    );
    assert!(err(&router("").replace(
        "device = \"eth1\"\ncap_mbit = 18.5\n",
        "device = \"eth1\"\nbackup = true\n"
    ))
    .contains("every WAN is a backup"));
    assert!(err("mode = \"router\"\n").contains("needs its own section, [router]"));
    let e = err(&router("psk = \"short\"\n"));
    assert!(e.starts_with("braidd.toml: field `router.psk`"), "{e}");
}

#[test]
fn keys_roundtrip() {
    let k = parse_key(KEY).unwrap();
    assert_eq!(format_key(&k), KEY);
}
