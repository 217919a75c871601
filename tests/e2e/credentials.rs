//! Credentials as real clusters hand them out, against the fake API server over HTTPS with
//! certificates made here by openssl: `endpoint https://…` with `tls CERT KEY CACERT` (the
//! server demands the client certificate), a kubeconfig with `certificate-authority-data`,
//! `client-certificate-data` and `client-key-data` (an RSA key in the PKCS#1 form kubeadm
//! writes), a kubeconfig with a bearer token, and the in-cluster service account.

use std::path::PathBuf;

use serde_json::json;

use crate::apiserver::{FakeApi, Tls};
use crate::harness::{Scratch, Server};
use crate::live::{lookup, namespace, service};

/// Runs openssl with `args` in `dir`.
pub fn openssl(dir: &Scratch, args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).current_dir(&dir.0).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`NAME.crt`, `NAME.key`) made here.
pub fn authority(dir: &Scratch, name: &str) {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,digitalSignature",
        ],
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate with a PKCS#1 RSA key.
pub fn certificates(dir: &Scratch) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    authority(dir, "ca");
    let mut server = vec!["req"];
    server.extend(ec);
    server.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"]);
    openssl(dir, &server);
    dir.write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    let sign = |csr: &str, out: &str, ext: &str| {
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                out,
                "-extfile",
                ext,
            ],
        )
    };
    sign("server.csr", "server.crt", "server.ext");
    // kubeadm's admin.conf carries an RSA key in PKCS#1 ("BEGIN RSA PRIVATE KEY").
    openssl(dir, &["genrsa", "-traditional", "-out", "client.key", "2048"]);
    openssl(
        dir,
        &["req", "-new", "-key", "client.key", "-out", "client.csr", "-subj", "/O=system:masters/CN=kubernetai"],
    );
    dir.write("client.ext", "extendedKeyUsage=clientAuth\n");
    sign("client.csr", "client.crt", "client.ext");
    let key = std::fs::read_to_string(dir.0.join("client.key")).expect("client key");
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "a PKCS#1 key: {key}");
}

fn api(dir: &Scratch, client_ca: bool, token: Option<&str>) -> FakeApi {
    let api = FakeApi::start_tls(Tls {
        cert: dir.0.join("server.crt"),
        key: dir.0.join("server.key"),
        client_ca: client_ca.then(|| dir.0.join("ca.crt")),
        token: token.map(String::from),
    });
    api.apply(namespace("shop"));
    api.apply(service("shop", "cart", "10.1.0.5", json!({})));
    api
}

fn at(dir: &Scratch, file: &str) -> String {
    dir.0.join(file).display().to_string()
}

fn base64(dir: &Scratch, file: &str) -> String {
    let out = std::process::Command::new("base64").args(["-w0", &at(dir, file)]).output().expect("base64 runs");
    String::from_utf8(out.stdout).expect("ascii")
}

fn corefile(dir: &Scratch, stanza: &str) -> PathBuf {
    dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n{stanza}  startup_timeout 20s\n }}\n}}\n"),
    )
}

#[test]
fn an_endpoint_with_a_client_certificate() {
    let dir = Scratch::new("credentials-endpoint");
    certificates(&dir);
    let api = api(&dir, true, None);
    let stanza = format!(
        "  endpoint {}\n  tls {} {} {}\n",
        api.url(),
        at(&dir, "client.crt"),
        at(&dir, "client.key"),
        at(&dir, "ca.crt")
    );
    let server = Server::start(&corefile(&dir, &stanza));
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
}

#[test]
fn a_kubeconfig_with_embedded_certificates_and_a_pkcs1_key() {
    let dir = Scratch::new("credentials-kubeconfig-data");
    certificates(&dir);
    let api = api(&dir, true, None);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: remote\nclusters:\n- name: remote\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: remote\n  context:\n    cluster: remote\n    user: admin\n",
        api.url(),
        base64(&dir, "ca.crt"),
        base64(&dir, "client.crt"),
        base64(&dir, "client.key"),
    );
    let file = dir.write("admin.conf", &kubeconfig);
    let server = Server::start(&corefile(&dir, &format!("  kubeconfig {} remote\n", file.display())));
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
}

#[test]
fn a_kubeconfig_with_a_bearer_token() {
    let dir = Scratch::new("credentials-token");
    certificates(&dir);
    let api = api(&dir, false, Some("s3cret-token"));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: remote\nclusters:\n- name: remote\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: reader\n  user:\n    token: s3cret-token\ncontexts:\n- name: remote\n  context:\n    cluster: remote\n    user: reader\n",
        api.url(),
        at(&dir, "ca.crt"),
    );
    let file = dir.write("token.conf", &kubeconfig);
    let server = Server::start(&corefile(&dir, &format!("  kubeconfig {}\n", file.display())));
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    assert!(api.requests_matching("authorization=Bearer s3cret-token") >= 3, "every request carries the token");
    drop(server);
    // A wrong token: 401, logged as such with the API server's answer.
    let wrong = dir.write("wrong.conf", &kubeconfig.replace("token: s3cret-token", "token: not-the-token"));
    let stanza = format!("  kubeconfig {}\n", wrong.display()).replace("startup_timeout 20s", "");
    let refused = Server::start(&dir.write(
        "Corefile",
        &format!(". {{\n bind 127.0.0.1\n kubernetai cluster.local {{\n{stanza}  startup_timeout 1s\n }}\n}}\n"),
    ));
    let line = refused.said_at_start("watch Namespace").expect("the failure is logged");
    assert!(line.contains("(unauthorized)") && line.contains("401"), "{line}");
}

#[test]
fn the_in_cluster_service_account() {
    let dir = Scratch::new("credentials-in-cluster");
    certificates(&dir);
    let api = api(&dir, false, Some("service-account-token"));
    // No endpoint, no kubeconfig: the pod's own cluster, as CoreDNS's kubernetes plugin.
    let server = Server::start_in_cluster(&corefile(&dir, ""), &dir, api.addr, "service-account-token");
    assert_eq!(lookup(&server, "cart.shop.svc.cluster.local"), ["10.1.0.5"]);
    assert!(api.requests_matching("authorization=Bearer service-account-token") >= 3);
}
