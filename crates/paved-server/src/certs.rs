//! Certificates for the webhook: a private CA and a serving certificate it
//! signs, as `paved install` hands them to the cluster (and tests use them).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// PEM texts: the CA certificate (the webhook configurations' `caBundle`), and
/// the serving certificate with its key.
#[derive(Clone, Debug)]
pub struct ServingCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot generate certificates: {0}")]
pub struct CertError(#[from] rcgen::Error);

/// Why a serving certificate left by an earlier install cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum NotReusable {
    #[error("{0} is not a PEM certificate")]
    Unreadable(&'static str),
    #[error("the certificate does not name {0}")]
    MissingName(String),
    #[error("the certificate expires within {0} days")]
    Expiring(i64),
    #[error("the certificate was not issued by the CA beside it")]
    OtherIssuer,
}

impl ServingCerts {
    /// Whether these certificates still serve `names` for at least `days`:
    /// then an install keeps them, and with them the `caBundle` the API
    /// server trusts, so applying again does not break TLS to running pods.
    pub fn still_serve(&self, names: &[String], days: i64) -> Result<(), NotReusable> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let der = |pem: &str, what: &'static str| {
            x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .map(|(_, pem)| pem.contents)
                .map_err(|_| NotReusable::Unreadable(what))
        };
        let (leaf_der, ca_der) = (der(&self.cert_pem, "tls.crt")?, der(&self.ca_pem, "ca.crt")?);
        let (_, leaf) = X509Certificate::from_der(&leaf_der).map_err(|_| NotReusable::Unreadable("tls.crt"))?;
        let (_, ca) = X509Certificate::from_der(&ca_der).map_err(|_| NotReusable::Unreadable("ca.crt"))?;
        if leaf.verify_signature(Some(ca.public_key())).is_err() {
            return Err(NotReusable::OtherIssuer);
        }
        let dns: Vec<&str> = leaf
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| if let GeneralName::DNSName(d) = n { Some(*d) } else { None })
                    .collect()
            })
            .unwrap_or_default();
        if let Some(missing) = names.iter().find(|n| !dns.contains(&n.as_str())) {
            return Err(NotReusable::MissingName(missing.clone()));
        }
        let deadline = jiff::Timestamp::now().as_second().saturating_add(days.saturating_mul(86_400));
        if leaf.validity().not_after.timestamp().min(ca.validity().not_after.timestamp()) < deadline {
            return Err(NotReusable::Expiring(days));
        }
        Ok(())
    }
}

/// A CA and a serving certificate for `names` (DNS names or IP addresses),
/// valid from now for `days`.
pub fn generate(names: &[String], days: i64) -> Result<ServingCerts, CertError> {
    // Whole days: from yesterday (clock skew between nodes) to `days` from today.
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let from = today.yesterday().unwrap_or(today);
    let until = today.checked_add(jiff::Span::new().days(days.clamp(1, 3650))).unwrap_or(today);
    let validity = |p: &mut CertificateParams| {
        p.not_before =
            rcgen::date_time_ymd(i32::from(from.year()), from.month().unsigned_abs(), from.day().unsigned_abs());
        p.not_after =
            rcgen::date_time_ymd(i32::from(until.year()), until.month().unsigned_abs(), until.day().unsigned_abs());
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "paved webhook CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.to_vec())?;
    leaf.distinguished_name.push(DnType::CommonName, names.first().map_or("paved", String::as_str));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    validity(&mut leaf);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(ServingCerts { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_kept_only_while_it_serves_the_names_long_enough() {
        let names = vec!["paved.paved-system.svc".to_owned()];
        let certs = generate(&names, 365).unwrap();
        assert!(certs.still_serve(&names, 30).is_ok());
        let other = vec!["paved.elsewhere.svc".to_owned()];
        assert!(matches!(certs.still_serve(&other, 30), Err(NotReusable::MissingName(n)) if n == other[0]));
        let short = generate(&names, 10).unwrap();
        assert!(matches!(short.still_serve(&names, 30), Err(NotReusable::Expiring(30))));
        let foreign_ca = ServingCerts { ca_pem: short.ca_pem.clone(), ..certs.clone() };
        assert!(matches!(foreign_ca.still_serve(&names, 30), Err(NotReusable::OtherIssuer)));
        let broken = ServingCerts { cert_pem: "not PEM".into(), ..certs };
        assert!(matches!(broken.still_serve(&names, 30), Err(NotReusable::Unreadable("tls.crt"))));
    }
}
