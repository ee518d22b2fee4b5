//! Certificates made fresh for a test, as PEM files: a CA, a server certificate for
//! 127.0.0.1/localhost, a client certificate, and an intruder's certificate from another CA.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// `ca.pem`; `server.pem`/`server.key` (localhost, 127.0.0.1) and `client.pem`/`client.key`,
/// both signed by it; `intruder.pem`/`intruder.key`, signed by an unrelated CA.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).expect("write pem");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
        write("ca.pem", ca.pem());
        for (name, sans) in
            [("server", vec!["localhost".to_owned(), "127.0.0.1".to_owned()]), ("client", vec!["master".to_owned()])]
        {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(sans).expect("params").signed_by(&key, &ca).expect("sign");
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        // A second, unrelated CA: certificates it signs must not be trusted.
        let mut other_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = CertifiedIssuer::self_signed(other_params, KeyPair::generate().expect("key")).expect("other ca");
        let key = KeyPair::generate().expect("key");
        let cert =
            CertificateParams::new(vec!["intruder".to_owned()]).expect("params").signed_by(&key, &other).expect("sign");
        write("intruder.pem", cert.pem());
        write("intruder.key", key.serialize_pem());
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}
