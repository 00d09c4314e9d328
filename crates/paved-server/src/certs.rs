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
